/* choreoctl tail: follows the events of the stream as they are stored. */
#ifndef CHOREOCTL_TAIL_H
#define CHOREOCTL_TAIL_H

#include "cli.h"

/* argv[0] is the first argument after "tail". Runs until SIGINT or
 * SIGTERM (then returns CTL_EXIT_OK) or a failure. */
int ctl_tail_main(ctl_settings *s, int argc, char **argv);

#endif
