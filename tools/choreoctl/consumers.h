/* choreoctl consumers list|delete: a service's durable consumers. */
#ifndef CHOREOCTL_CONSUMERS_H
#define CHOREOCTL_CONSUMERS_H

#include "cli.h"

/* Runs "consumers SUBCOMMAND ..." (argv[0] is the subcommand); returns the
 * exit status. */
int ctl_consumers_main(ctl_settings *s, int argc, char **argv);

#endif
