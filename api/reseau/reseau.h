/** @file
 * reseau: include this to get the whole public API. */
#ifndef RESEAU_RESEAU_H
#define RESEAU_RESEAU_H

#include <reseau/address.h>
#include <reseau/common.h>
#include <reseau/event_loop.h>
#include <reseau/host_resolver.h>
#include <reseau/pipe.h>
#include <reseau/socket.h>
#include <reseau/udp.h>
#include <reseau/watch.h>

#endif
