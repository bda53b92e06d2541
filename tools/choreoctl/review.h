/* choreoctl review: list the steps a service holds for a person's decision
 * and approve or reject them, through the choreo_admin API. */
#ifndef CHOREOCTL_REVIEW_H
#define CHOREOCTL_REVIEW_H

#include "cli.h"

/* Runs "review SUBCOMMAND ...": argv[0] is the subcommand. Returns the exit
 * status (enum ctl_exit). */
int ctl_review_main(ctl_settings *s, int argc, char **argv);

#endif
