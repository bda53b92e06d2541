/* Internal additions to the public msgpack writer. */
#ifndef CHOREO_MP_WRITER_H
#define CHOREO_MP_WRITER_H

#include "choreo.h"

/* Appends bytes that are already msgpack, under the writer's maximum. */
void choreo__mp_write_raw(choreo_mp_writer *w, const void *bytes, size_t len);

#endif
