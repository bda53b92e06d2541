/* choreoctl saga: the timeline of one saga, from the stream and the
 * services' databases, as text, JSON or an SVG sequence diagram. */
#ifndef CHOREOCTL_SAGA_H
#define CHOREOCTL_SAGA_H

#include "cli.h"

/* argv[0] is the first argument after "saga". Returns the exit status. */
int ctl_saga_main(ctl_settings *s, int argc, char **argv);

#endif
