/* choreoctl sagas: the orchestrated saga instances a service's database
 * records, newest first; and the pieces of their output that choreoctl saga
 * shares (an instance's JSON fields, the legend of its step letters). */
#ifndef CHOREOCTL_SAGAS_H
#define CHOREOCTL_SAGAS_H

#include <stdbool.h>
#include <stdio.h>

#include <choreo.h>

#include "cli.h"
#include "json.h"

/* argv[0] is the first argument after "sagas". Returns the exit status. */
int ctl_sagas_main(ctl_settings *s, int argc, char **argv);

/* The fields of an instance as members of the JSON object being written:
 * saga, definition, state, phase, position and failed_step (null when
 * empty), steps, started_at, started_at_ms, updated_at, updated_at_ms and,
 * when count is set, transitions (their number). */
void ctl_sagas_entry_json(ctl_json *j, const choreo_saga_entry *e, bool count);

/* Prints what each step letter that occurs in seen means, in a fixed
 * order, separated by ", " ("P command sent, D done"). */
void ctl_sagas_legend(FILE *f, const char *seen);

#endif
