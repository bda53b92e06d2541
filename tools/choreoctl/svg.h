/* A saga's timeline as an SVG sequence diagram. */
#ifndef CHOREOCTL_SVG_H
#define CHOREOCTL_SVG_H

#include "timeline.h"

/* Writes t (finished) to the file path as a standalone SVG document:
 * services as vertical lanes, events from top to bottom in time order,
 * an arrow from the emitting service's lane to each service that applied
 * or parked the event. Prints an error and returns CTL_EXIT_FAIL when the
 * file cannot be written, or returns CTL_EXIT_OK. */
int ctl_svg_write(const ctl_timeline *t, const char *path);

#endif
