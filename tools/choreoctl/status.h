/* choreoctl status: one screen per service database: its process, outbox,
 * relay, consumers and parked messages. */
#ifndef CHOREOCTL_STATUS_H
#define CHOREOCTL_STATUS_H

#include "cli.h"

/* Runs "status [--db FILE]... [--dir DIR]... [--json]" (argv follows the
 * command's name); returns the exit status (enum ctl_exit). */
int ctl_status_main(ctl_settings *s, int argc, char **argv);

#endif
