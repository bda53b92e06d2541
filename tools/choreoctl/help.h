/* The help texts of choreoctl and of each of its commands. */
#ifndef CHOREOCTL_HELP_H
#define CHOREOCTL_HELP_H

#include <stdio.h>

#include <choreo.h>

void ctl_help_main(FILE *f);
/* Every choreo setting with its flag, variable and default. */
void ctl_help_settings(FILE *f, const choreo_config *cfg);
void ctl_help_dead(FILE *f);
void ctl_help_dead_list(FILE *f);
void ctl_help_dead_show(FILE *f);
void ctl_help_dead_retry(FILE *f);
void ctl_help_dead_drop(FILE *f);
void ctl_help_consumers(FILE *f);
void ctl_help_status(FILE *f);
void ctl_help_sagas(FILE *f);
void ctl_help_saga(FILE *f);
void ctl_help_tail(FILE *f);
void ctl_help_review(FILE *f);
void ctl_help_review_list(FILE *f);
/* approve and reject share one text. */
void ctl_help_review_decide(FILE *f);

#endif
