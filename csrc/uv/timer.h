/* One-shot timers (timer.c). */
#ifndef JSONRPC_TIMER_H
#define JSONRPC_TIMER_H

#include "loop.h"

/* Adds timer to the table on top. */
void jr_timer_open(lua_State *L);

#endif
