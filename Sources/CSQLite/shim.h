#ifndef AERODB_CSQLITE_SHIM_H
#define AERODB_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
