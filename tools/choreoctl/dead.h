/* choreoctl dead: list, show, retry and drop the parked messages of a
 * service's database through the choreo_admin API. */
#ifndef CHOREOCTL_DEAD_H
#define CHOREOCTL_DEAD_H

#include "cli.h"

/* Runs "dead SUBCOMMAND ...": argv[0] is the subcommand. Returns the exit
 * status (enum ctl_exit). */
int ctl_dead_main(ctl_settings *s, int argc, char **argv);

#endif
