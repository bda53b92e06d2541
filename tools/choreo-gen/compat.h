/* Compatibility checks: between two versions of a schema, and between a
 * producer's schema and a consumer's subset of it. */
#ifndef CHOREO_GEN_COMPAT_H
#define CHOREO_GEN_COMPAT_H

#include "schema.h"

typedef struct gen_compat_counts {
    size_t breaking;   /* changes that break producers or consumers of either side */
    size_t warnings;   /* changes that keep the wire working but change behaviour */
    size_t compatible; /* additive changes, reported for the record */
} gen_compat_counts;

/* Compares old_s with new_s and prints one line per change to `file` (a
 * FILE *): "file:line: breaking|warning|compatible: what changed". Returns
 * the counts; the schemas are compatible when counts.breaking is 0. */
gen_compat_counts gen_compat_check(const gen_schema *old_s, const gen_schema *new_s, void *file);

/* Checks that what `consumer` declares (a subset of a schema: the events,
 * records and fields a service reads) is met by `producer`, the schema of
 * the service that emits them, and prints one line per finding to `file` (a
 * FILE *), in the format of gen_compat_check. Fields of the producer that
 * the consumer does not declare are not reported: its decoder skips them.
 * The expectations are met when counts.breaking is 0. */
gen_compat_counts gen_compat_consumer(const gen_schema *producer, const gen_schema *consumer,
                                      void *file);

#endif
