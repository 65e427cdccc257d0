/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * config_render: the effective config as JSON (GET /config).
 * It may call: config/config, lib/buf.
 */
#ifndef WEFT_CONFIG_RENDER_H
#define WEFT_CONFIG_RENDER_H

struct buf;
struct weft_config;

/* Appends the effective config, defaults included, as one JSON object (GET /config). */
void cfg_render_json(const struct weft_config *c, struct buf *out);

#endif
