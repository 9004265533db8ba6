// libpq (Debian: libpq-dev), found through pkg-config. Only GatehousePostgres imports it: one
// module owns the PGconn objects. Nothing here is a macro Swift cannot see, so the shim is the
// header alone.
#ifndef CLIBPQ_SHIM_H
#define CLIBPQ_SHIM_H

#include <libpq-fe.h>

#endif
