/**
 * `POST /api/inject/v1` (http-api.md §3): one message per recipient from a
 * raw or builder template, spooled durably and handed to the queue before
 * the response is sent (the injector's back-pressure).
 *
 * Order per request: refuse early (503 `Error: shutting down` / `load
 * shedding` / `waiting for spool startup` / `disk is too full`) →
 * read/parse/shape-check the body (413/415/400/422) → parse
 * `envelope_sender` (500) → compile templates (422) → per recipient, in
 * request order: count `total_messages_received{service="http_listener"}`,
 * parse the address, render and build, new spool id (+ `Received:` when
 * asked), meta (`http_auth`, `reception_protocol`, `received_from`,
 * `received_via`, `hostname`, `extra`), `http_message_generated`, queue name
 * (`null` → dropped), queue resolution (`get_queue_config`, egress pool
 * and sources, once per distinct queue; a failure fails that recipient and
 * nothing of it is spooled), supplemental header → spool all (meta + data,
 * fsync, one group commit) unless `deferred_spool` → `Reception` logs →
 * queue hand-off (a refused insert removes the message from the spool, logs
 * `Bounce` and fails that recipient) → `InjectV1Response`.
 *
 * `deferred_generation` stores the request itself as one message in the
 * internal queue `generator.kumomta.internal`; {@link runGeneratorMessage}
 * expands it later through the same path.
 *
 * Place on the path: the HTTP twin of the SMTP DATA phase. It never
 * delivers and never answers before every recipient is queued or failed.
 *
 * @module
 */

import type { Context } from "hono";
import { Message } from "../message/message.ts";
import {
  type EnvelopeAddress,
  makeEnvelopeAddress,
  NULL_SENDER,
  parseEnvelopeAddress,
} from "../message/envelope_address.ts";
import type { ReceptionServices } from "../smtp/server/reception_services.ts";
import { messageLogContext, receptionRecord } from "../smtp/server/reception_log.ts";
import { supplementalHeaderValue } from "../smtp/server/trace_headers.ts";
import { rfc2822Date } from "../util/calendar.ts";
import { formatRfc3339Nanos, type LogRecord, nowEpochMs } from "../log/record.ts";
import { diag } from "../log/diag.ts";
import { kumoMetrics } from "../metrics/kumo_metrics.ts";
import type { AuthInfo, HttpEnv } from "./access_rules.ts";
import type { HttpServices } from "./http_services.ts";
import { HttpError, readJsonBody } from "./request_body.ts";
import { type InjectRecipient, type InjectRequest, parseInjectRequest } from "./inject_request.ts";
import { loadContentHelpers, prepareContent, type PreparedContent } from "./inject_content.ts";
import { refusalReason } from "./check_liveness_v1.ts";
import { wasSaved } from "../policy/message_methods.ts";
import { storeMessage } from "../spool/store_message.ts";

/** The internal queue of deferred-generation requests. */
export const GENERATOR_QUEUE = "generator.kumomta.internal";

/** `InjectV1Response`. */
export interface InjectV1Response {
  success_count: number;
  fail_count: number;
  failed_recipients: string[];
  errors: string[];
}

/** Where a request came from, for meta and logs. */
export interface InjectOrigin {
  peerIp: string;
  auth: AuthInfo;
  /** Listener facts; absent for deferred-generation expansion. */
  listener?: { ip: string; hostname: string };
}

const received = kumoMetrics.totalMessagesReceived.labels("http_listener");

/** `envelope_sender`: `a@b`, `<a@b>`, `""`/`<>`, or `postmaster`. */
function parseSender(text: string): EnvelopeAddress {
  let s = text.trim();
  if (s.startsWith("<") && s.endsWith(">")) s = s.slice(1, -1);
  if (s === "") return NULL_SENDER;
  if (s.toLowerCase() === "postmaster") return makeEnvelopeAddress(s, "");
  return parseEnvelopeAddress(s);
}

/** meta `http_auth`: Basic user, else the first identity, else the peer IP. */
function httpAuthOf(auth: AuthInfo): string {
  return auth.basicUser ?? auth.identities[0]?.identity ?? auth.peerAddress;
}

/** The AuthInfo table handed to Lua (`http_message_generated`) and kept in meta. */
function authInfoValue(auth: AuthInfo): Record<string, unknown> {
  return {
    peer_address: auth.peerAddress,
    identities: auth.identities.map((i) => ({ identity: i.identity, context: i.context })),
    groups: auth.groups.slice(),
  };
}

function recordFor(
  services: ReceptionServices,
  origin: InjectOrigin,
  msg: Message,
  queue: string,
): LogRecord {
  const rec = receptionRecord(
    { ehlo: "", peerIp: origin.peerIp, sessionId: "", nodeId: services.nodeId },
    msg,
    queue,
  );
  rec.session_id = undefined; // no SMTP session; the key stays (one record shape)
  return rec;
}

/**
 * Resolve each distinct queue of a request once through the hand-off's
 * `prepare` (`null` = resolved, else the error that fails its recipients).
 */
function queueResolver(services: ReceptionServices): (queue: string) => Promise<Error | null> {
  const seen = new Map<string, Promise<Error | null>>();
  return (queue) => {
    let r = seen.get(queue);
    if (r === undefined) {
      const prepare = services.handoff.prepare?.bind(services.handoff);
      r = prepare === undefined ? Promise.resolve(null) : prepare(queue).then(
        () => null,
        (e) => {
          const err = new Error(`Cannot resolve queue "${queue}": ${errorText(e)}`);
          diag.error("kumod::http", err.message);
          return err;
        },
      );
      seen.set(queue, r);
    }
    return r;
  };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Generate, spool, log and queue one message per recipient.
 *
 * @example
 * ```ts
 * const res = await injectRecipients(services, origin, request, sender, prepared);
 * ```
 */
export async function injectRecipients(
  services: ReceptionServices,
  origin: InjectOrigin,
  req: InjectRequest,
  sender: EnvelopeAddress,
  content: PreparedContent,
): Promise<InjectV1Response> {
  const res: InjectV1Response = {
    success_count: 0,
    fail_count: 0,
    failed_recipients: [],
    errors: [],
  };
  const failRcpt = (email: string, e: unknown) => {
    res.fail_count++;
    res.failed_recipients.push(email);
    res.errors.push(`${email}: ${errorText(e)}`);
  };
  const engine = services.engine;
  const trace = req.traceHeaders;
  const now = Date.now();
  const generated: { msg: Message; queue: string; rcpt: InjectRecipient }[] = [];
  const resolve = queueResolver(services);
  // A message the policy wrote to the spool (msg:save() in
  // http_message_generated) that is then not queued loses those records.
  const dropSaved = async (msg: Message | undefined) => {
    const spools = services.spools;
    if (msg === undefined || spools === null || !wasSaved(msg)) return;
    await Promise.allSettled([spools.meta.remove(msg.id), spools.data.remove(msg.id)]);
  };

  for (const rcpt of req.recipients) {
    received.inc();
    let msg: Message | undefined;
    try {
      const addr = parseEnvelopeAddress(rcpt.email);
      const data = content.build(rcpt, now);
      msg = new Message({ sender, recipients: [addr], data, meta: {} });
      if (trace.receivedHeader) {
        msg.prependHeader(
          "Received",
          `from ${sender.domain} (${origin.peerIp})\r\n  by ${Deno.hostname()} (KumoMTA)\r\n` +
            `  with HTTP id ${msg.id} for <${addr.email}>;\r\n  ${rfc2822Date(now)}`,
        );
      }
      const meta = msg.meta;
      meta.http_auth = httpAuthOf(origin.auth);
      meta.reception_protocol = "HTTP";
      meta.received_from = origin.peerIp;
      if (origin.listener) {
        meta.received_via = origin.listener.ip;
        meta.hostname = origin.listener.hostname;
      }
      if (Object.keys(rcpt.metadata).length > 0) meta.extra = rcpt.metadata;
      if (engine.hasHandler("http_message_generated")) {
        await engine.callOrThrow("http_message_generated", "mx", [
          msg,
          authInfoValue(origin.auth),
        ]);
      }
    } catch (e) {
      await dropSaved(msg);
      failRcpt(rcpt.email, e);
      continue;
    }
    let queue: string;
    try {
      queue = msg.queueName();
    } catch (e) {
      await dropSaved(msg);
      failRcpt(rcpt.email, e);
      continue;
    }
    if (queue === "null") {
      await dropSaved(msg);
      res.success_count++;
      continue;
    }
    // As at the end of SMTP DATA: a queue whose config, pool or sources
    // cannot be resolved fails the recipient before anything is spooled.
    const unresolved = await resolve(queue);
    if (unresolved !== null) {
      await dropSaved(msg);
      failRcpt(rcpt.email, unresolved);
      continue;
    }
    if (trace.supplementalHeader) {
      msg.prependHeader(
        trace.headerName,
        supplementalHeaderValue(
          [msg.recipients[0].email],
          msg.meta,
          trace.includeMetaNames,
        ),
      );
    }
    generated.push({ msg, queue, rcpt });
  }

  // Spool every generated message at once: one group commit for the batch.
  const spools = services.spools;
  if (spools === null) throw new HttpError(503, "Error: waiting for spool startup");
  let stored = generated;
  if (!req.deferredSpool) {
    const results = await Promise.allSettled(generated.map(({ msg }) => storeMessage(spools, msg)));
    stored = [];
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      if (r.status === "fulfilled") stored.push(generated[i]);
      else {
        const { msg, rcpt } = generated[i];
        await Promise.allSettled([spools.meta.remove(msg.id), spools.data.remove(msg.id)]);
        failRcpt(rcpt.email, r.reason);
      }
    }
  }

  for (const { msg, queue } of stored) {
    services.logs.submit(recordFor(services, origin, msg, queue), messageLogContext(msg));
  }
  const inserted = await Promise.allSettled(stored.map(({ msg }) => services.handoff.insert(msg)));
  for (let i = 0; i < inserted.length; i++) {
    const r = inserted[i];
    const { msg, queue, rcpt } = stored[i];
    if (r.status === "fulfilled") {
      res.success_count++;
      continue;
    }
    diag.error("kumod::http", `Cannot insert message "${msg.id}" into its queue: ${r.reason}`);
    await Promise.allSettled([spools.meta.remove(msg.id), spools.data.remove(msg.id)]);
    const rec = recordFor(services, origin, msg, queue);
    rec.type = "Bounce";
    rec.response = {
      code: 500,
      enhanced_code: null,
      content: `failed to insert into queue: ${errorText(r.reason)}`,
      command: null,
    };
    services.logs.submit(rec, messageLogContext(msg));
    failRcpt(rcpt.email, r.reason);
  }
  return res;
}

/** Store a deferred-generation request as one internal message and queue it. */
async function deferGeneration(
  services: ReceptionServices,
  origin: InjectOrigin,
  json: Record<string, unknown>,
  req: InjectRequest,
  sender: EnvelopeAddress,
): Promise<void> {
  const body = JSON.stringify({ ...json, deferred_generation: false });
  const msg = new Message({
    sender,
    recipients: [NULL_SENDER],
    data: new TextEncoder().encode(body),
    meta: {
      queue: GENERATOR_QUEUE,
      auth_info: authInfoValue(origin.auth),
      http_auth: httpAuthOf(origin.auth),
      reception_protocol: "HTTP",
      received_from: origin.peerIp,
    },
  });
  const spools = services.spools;
  if (spools === null) throw new HttpError(503, "Error: waiting for spool startup");
  if (!req.deferredSpool) await storeMessage(spools, msg);
  services.logs.submit(recordFor(services, origin, msg, GENERATOR_QUEUE), messageLogContext(msg));
  await services.handoff.insert(msg);
}

/**
 * Expand one queued deferred-generation message (§3.6): the normal path,
 * then `Delivery` (250 ok) for the generator message, or `Bounce` (500 +
 * error) when the request could not be expanded at all; finally the
 * generator message leaves the spool. Per-recipient failures are dropped.
 */
export async function runGeneratorMessage(
  services: ReceptionServices,
  msg: Message,
): Promise<void> {
  const spools = services.spools;
  const origin: InjectOrigin = {
    peerIp: String(msg.meta.received_from ?? ""),
    auth: {
      peerAddress: String(msg.meta.received_from ?? ""),
      identities: [],
      groups: [],
      basicUser: typeof msg.meta.http_auth === "string" ? msg.meta.http_auth : undefined,
    },
  };
  const info = msg.meta.auth_info as { identities?: unknown; groups?: unknown } | undefined;
  if (info && Array.isArray(info.identities)) origin.auth.identities = info.identities;
  if (info && Array.isArray(info.groups)) origin.auth.groups = info.groups;
  const rec = recordFor(services, origin, msg, GENERATOR_QUEUE);
  try {
    let data = msg.data;
    if (data === null && spools !== null) data = await spools.data.load(msg.id);
    if (data === null) throw new Error("request body is missing from the spool");
    const req = parseInjectRequest(JSON.parse(new TextDecoder().decode(data)));
    const sender = parseSender(req.envelopeSender);
    await loadContentHelpers(req);
    using content = prepareContent(req);
    await injectRecipients(services, origin, req, sender, content);
    rec.type = "Delivery";
    rec.response = { code: 250, enhanced_code: null, content: "ok", command: null };
  } catch (e) {
    rec.type = "Bounce";
    rec.response = { code: 500, enhanced_code: null, content: errorText(e), command: null };
  }
  const now = nowEpochMs();
  rec.timestamp = Math.floor(now / 1000);
  rec.event_time = formatRfc3339Nanos(now);
  rec.reception_protocol = null;
  services.logs.submit(rec, messageLogContext(msg));
  if (spools !== null) {
    await Promise.allSettled([spools.meta.remove(msg.id), spools.data.remove(msg.id)]);
  }
}

/**
 * The route handler.
 *
 * @example
 * ```ts
 * app.post("/api/inject/v1", authorize(services, "inject"), injectV1(services));
 * ```
 */
export function injectV1(services: HttpServices) {
  return async function injectV1Handler(c: Context<HttpEnv>): Promise<Response> {
    const reception = services.reception;
    try {
      const refusal = refusalReason(reception);
      if (refusal !== null) {
        const reason = refusal === "storage is too full" ? "disk is too full" : refusal;
        throw new HttpError(503, `Error: ${reason}`);
      }
      const json = await readJsonBody(c.req.raw, services.listener.config.requestBodyLimit);
      const req = parseInjectRequest(json);
      let sender: EnvelopeAddress;
      try {
        sender = parseSender(req.envelopeSender);
      } catch (e) {
        throw new HttpError(500, `Error: envelope_sender: ${errorText(e)}`);
      }
      await loadContentHelpers(req);
      using content = prepareContent(req);
      const auth = c.get("auth");
      const origin: InjectOrigin = {
        peerIp: auth.peerAddress,
        auth,
        listener: { ip: services.listener.ip, hostname: services.listener.config.hostname },
      };
      if (req.deferredGeneration) {
        await deferGeneration(reception, origin, json as Record<string, unknown>, req, sender);
        return c.json({ success_count: 0, fail_count: 0, failed_recipients: [], errors: [] });
      }
      return c.json(await injectRecipients(reception, origin, req, sender, content));
    } catch (e) {
      if (e instanceof HttpError) return e.getResponse();
      diag.error("kumod::http", `inject failed: ${errorText(e)}`);
      return c.text(`Error: ${errorText(e)}`, 500);
    }
  };
}
