/* choreoctl consumers list|delete: a service's durable consumers. */
#ifndef CHOREOCTL_CONSUMERS_H
#define CHOREOCTL_CONSUMERS_H

#include "cli.h"

/* Runs "consumers SUBCOMMAND ..." (argv[0] is the subcommand); returns the
 * exit status. */
int ctl_consumers_main(ctl_settings *s, int argc, char **argv);

/* "registered", "stale", "missing", or "odd filter" for a consumer on the
 * server whose filter is not what choreo gives its handler. */
const char *ctl_consumer_state(const choreo_consumer_entry *e);

/* Whether a consumer reads <prefix>.<Type>.* for its own type only. */
bool ctl_consumer_own_filter(const choreo_consumer_entry *e);

/* After a table of consumers: a paragraph per consumer with an odd filter,
 * and the count of stale ones; lines start with indent. */
void ctl_consumer_notes(const choreo_consumer_entry *list, size_t n, const char *indent);

#endif
