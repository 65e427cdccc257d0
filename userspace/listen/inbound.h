/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * inbound: agent.inbound, where other nodes' agents connect over mutual TLS.
 * Per connection: TLS 1.3 handshake (client certificate required, verified
 * against tls.ca and tls.trust_domain; at most tls.max_handshakes at once,
 * each bounded by tls.handshake_timeout_ms together with the preamble), then
 * the preamble naming the target endpoint, then admission (the target must
 * be a local endpoint; the caller's certificate identity must be allowed by
 * the service's authorization), then a relay to the endpoint. Every refusal
 * happens before any byte reaches an endpoint, is logged with its reason and
 * counted; the caller gets a preamble reply saying why where it can.
 * Runs in the main loop.
 * It may call: codec/preamble, config/config, lib/buf, lib/list, lib/log,
 * lib/lpause, lib/sock, state/service, tcp/relay, tls/mtls, tls/tls, libev.
 */
#ifndef WEFT_INBOUND_H
#define WEFT_INBOUND_H

#include <ev.h>
#include <stddef.h>

struct inbound;
struct registry;
struct mtls;
struct buf;
struct weft_config;

int inbound_start(struct ev_loop *loop, const struct weft_config *cfg, struct registry *reg, struct mtls *m,
		  struct inbound **out, char *err, size_t errlen);
/* New TLS bundle / limits after a reload; connections in progress keep theirs. */
void inbound_update(struct inbound *in, const struct weft_config *cfg, struct mtls *m);
void inbound_stop_accepting(struct inbound *in);
/* Handshakes plus admitted relays in progress (drain waits for 0). */
unsigned inbound_active(const struct inbound *in);
/* Ends every handshake and resets every inbound relay (drain timeout, shutdown). */
void inbound_abort_all(struct inbound *in);
void inbound_free(struct inbound *in);
void inbound_render_metrics(struct inbound *in, struct buf *out);

#endif
