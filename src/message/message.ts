/**
 * Message: one accepted mail — envelope, meta, body bytes, queue state.
 *
 * Created by the SMTP server at DATA time (or by HTTP inject), passed through
 * the reception policy events (`msg:*` methods bind to the methods here), then
 * written to the spool as two records — `metaRecord()` JSON in the meta spool,
 * the raw bytes in the data spool — and rebuilt from them with `fromSpool()`
 * at spool-in. The queue layer owns `due`, `numAttempts` and shrinking
 * (`data = null` once the bytes are safely in the spool).
 *
 * Plain data plus small helpers: never does I/O, never touches a queue.
 *
 * @module
 */

import type { EnvelopeAddress } from "./envelope_address.ts";
import { makeEnvelopeAddress, NULL_SENDER, parseEnvelopeAddress } from "./envelope_address.ts";
import * as headers from "./headers.ts";
import type { HeaderField } from "./headers.ts";
import { buildQueueName } from "./queue_name.ts";
import { newSpoolId, spoolIdCreatedMs } from "./spool_id.ts";
import { importHeaders, type ImportHeaderSpec } from "./import_headers.ts";
import { parseWindow } from "./schedule_window.ts";

/** Per-message schedule (`msg:set_scheduling`); `dow`, `tz`, `start`, `end` go together. */
export interface Scheduling {
  /** RFC 3339 time before which no attempt is made. */
  first_attempt?: string;
  /** RFC 3339 time after which the message expires. */
  expires?: string;
  /** Allowed days, e.g. `"Mon,Wed"`. */
  dow?: string;
  /** IANA time zone for `start`/`end`. */
  tz?: string;
  /** Window start `"HH:MM:SS"`. */
  start?: string;
  /** Window end `"HH:MM:SS"`. */
  end?: string;
}

/** The JSON record stored in the meta spool (KumoMTA `MetaData` layout). */
export interface SpoolMetaRecord {
  sender: string;
  /** A string when there is one recipient, an array when several. */
  recipient: string | string[];
  meta: Record<string, unknown>;
  schedule?: Scheduling;
}

/** Fields for {@linkcode Message}'s constructor. */
export interface MessageInit {
  /** Spool id; a new one is made when absent. */
  id?: string;
  sender: EnvelopeAddress | string;
  recipients: readonly (EnvelopeAddress | string)[];
  meta?: Record<string, unknown>;
  data: Uint8Array | null;
  /** Next attempt time, ms since the epoch. @default Date.now() */
  due?: number;
  /** @default 0 */
  numAttempts?: number;
  scheduling?: Scheduling;
}

const SCHEDULE_KEYS = ["first_attempt", "expires", "dow", "tz", "start", "end"] as const;
const WINDOW_KEYS = ["dow", "tz", "start", "end"] as const;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * An address from a string or an address object. Strings that are not
 * RFC 5321 mailboxes (e.g. `postmaster` read back from a spool) are split at
 * the last `@` rather than rejected.
 */
function toAddress(x: EnvelopeAddress | string): EnvelopeAddress {
  if (typeof x !== "string") return x;
  try {
    return parseEnvelopeAddress(x);
  } catch {
    const at = x.lastIndexOf("@");
    return at < 0
      ? makeEnvelopeAddress(x, "")
      : makeEnvelopeAddress(x.slice(0, at), x.slice(at + 1));
  }
}

/**
 * Validate and copy a schedule table.
 *
 * @throws {TypeError} on unknown keys, non-string values, or a partial
 * `dow`/`tz`/`start`/`end` window.
 */
export function parseScheduling(value: unknown): Scheduling {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`Cannot set scheduling ${JSON.stringify(value)}: expected an object`);
  }
  const out: Scheduling = {};
  for (const [k, v] of Object.entries(value)) {
    if (!(SCHEDULE_KEYS as readonly string[]).includes(k)) {
      throw new TypeError(`Cannot set scheduling key "${k}": unknown key`);
    }
    if (v === undefined || v === null) continue;
    if (typeof v !== "string") {
      throw new TypeError(`Cannot set scheduling key "${k}": expected a string`);
    }
    out[k as keyof Scheduling] = v;
  }
  const present = WINDOW_KEYS.filter((k) => out[k] !== undefined).length;
  if (present !== 0 && present !== WINDOW_KEYS.length) {
    throw new TypeError(`Cannot set scheduling window: dow, tz, start and end must all be set`);
  }
  for (const k of ["first_attempt", "expires"] as const) {
    const v = out[k];
    if (v !== undefined && !Number.isFinite(Date.parse(v))) {
      throw new TypeError(`Cannot set scheduling key "${k}": "${v}" is not an RFC 3339 time`);
    }
  }
  parseWindow(out); // validates dow, tz, start and end
  return out;
}

/**
 * One message. Fields are public plain data; methods mirror the `msg:*`
 * policy API (lua-api.md §7.1). Mutators set `metaDirty`/`dataDirty` so the
 * queue layer knows what to write back to the spool.
 *
 * @example
 * ```ts
 * const msg = new Message({
 *   sender: "a@example.com",
 *   recipients: ["b@Example.NET"],
 *   data: new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n"),
 * });
 * msg.setMeta("tenant", "shop");
 * msg.queueName(); // "shop@example.net"
 * ```
 */
export class Message {
  /** Spool id (32 hex chars). */
  readonly id: string;
  sender: EnvelopeAddress;
  recipients: EnvelopeAddress[];
  /** JSON-able meta values. */
  meta: Record<string, unknown>;
  /** Raw RFC 5322 bytes (CRLF); `null` when shrunk (only in the data spool). */
  data: Uint8Array | null;
  /** Next attempt time, ms since the epoch. Not persisted. */
  due: number;
  /** Delivery attempts so far. Not persisted. */
  numAttempts: number;
  scheduling?: Scheduling;
  /** Meta, envelope or schedule changed since the last spool write. */
  metaDirty = true;
  /** Data changed since the last spool write. */
  dataDirty = true;
  /**
   * `msg:set_force_sync(true)`: every later spool write of this message is
   * synced (fsync) before processing goes on. Not persisted.
   */
  forceSync = false;
  #createdMs?: number;

  constructor(init: MessageInit) {
    this.id = init.id ?? newSpoolId();
    this.sender = toAddress(init.sender);
    this.recipients = init.recipients.map(toAddress);
    this.meta = init.meta ?? {};
    this.data = init.data;
    this.due = init.due ?? Date.now();
    this.numAttempts = init.numAttempts ?? 0;
    if (init.scheduling) this.scheduling = init.scheduling;
  }

  /** Creation time (ms since the epoch), read from the id. */
  get createdMs(): number {
    return this.#createdMs ??= spoolIdCreatedMs(this.id);
  }

  // ---- envelope ----

  /** `msg:set_sender`: a string or an address. */
  setSender(addr: EnvelopeAddress | string): void {
    this.sender = toAddress(addr);
    this.metaDirty = true;
  }

  /** `msg:recipient()`: the only recipient, an array when several, `undefined` when none. */
  recipient(): EnvelopeAddress | EnvelopeAddress[] | undefined {
    const n = this.recipients.length;
    return n === 0 ? undefined : n === 1 ? this.recipients[0] : this.recipients.slice();
  }

  /** `msg:recipient_list()`. */
  recipientList(): EnvelopeAddress[] {
    return this.recipients.slice();
  }

  /** `msg:set_recipient`: a string, an address, or an array of either. */
  setRecipient(x: EnvelopeAddress | string | readonly (EnvelopeAddress | string)[]): void {
    this.recipients = Array.isArray(x)
      ? x.map(toAddress)
      : [toAddress(x as EnvelopeAddress | string)];
    this.metaDirty = true;
  }

  // ---- meta ----

  /** `msg:get_meta(key)`: the value, or `undefined` when missing. */
  getMeta(key: string): unknown {
    return this.meta[key];
  }

  /** `msg:set_meta(key, value)`: `undefined` is stored as `null` (≈ unset). */
  setMeta(key: string, value: unknown): void {
    this.meta[key] = value === undefined ? null : value;
    this.metaDirty = true;
  }

  /**
   * `msg:queue_name()`: meta `queue` verbatim, else built from meta
   * `campaign`, `tenant`, `routing_domain` and the first recipient's domain.
   *
   * @throws {TypeError} when one of those meta values is not a string.
   * @throws {Error} when the message has no recipient.
   */
  queueName(): string {
    const queue = this.meta.queue;
    if (typeof queue === "string") return queue;
    const first = this.recipients[0];
    if (first === undefined && queue == null) {
      throw new Error(`Cannot compute queue name of message "${this.id}": no recipient`);
    }
    return buildQueueName({
      queue,
      campaign: this.meta.campaign,
      tenant: this.meta.tenant,
      routingDomain: this.meta.routing_domain,
      domain: first?.domain ?? "",
    });
  }

  // ---- scheduling ----

  /** `msg:set_scheduling(t|nil)`: validates, returns the schedule now in force. */
  setScheduling(value: unknown): Scheduling | undefined {
    if (value === undefined || value === null) delete this.scheduling;
    else this.scheduling = parseScheduling(value);
    this.metaDirty = true;
    return this.scheduling;
  }

  /** `msg:increment_num_attempts()`. */
  incrementNumAttempts(): number {
    return ++this.numAttempts;
  }

  // ---- data ----

  /**
   * The raw message bytes.
   *
   * @throws {Error} when the data was shrunk to the spool and not reloaded.
   */
  getData(): Uint8Array {
    if (this.data === null) {
      throw new Error(`Cannot read data of message "${this.id}": data is not loaded`);
    }
    return this.data;
  }

  /** `msg:get_data()` as text (UTF-8, invalid bytes replaced). */
  getDataString(): string {
    return utf8Decoder.decode(this.getData());
  }

  /** `msg:set_data(bytes)`: a string is stored as UTF-8. */
  setData(data: Uint8Array | string): void {
    this.data = typeof data === "string" ? utf8Encoder.encode(data) : data;
    this.dataDirty = true;
  }

  #replaceData(next: Uint8Array): void {
    if (next !== this.data) {
      this.data = next;
      this.dataDirty = true;
    }
  }

  // ---- headers (delegate to headers.ts) ----

  /** `msg:prepend_header(name, value [, encode])`. */
  prependHeader(name: string, value: string, encode = false): void {
    this.#replaceData(headers.prependHeader(this.getData(), name, value, encode));
  }

  /** `msg:append_header(name, value [, encode])`; throws when there is no blank line. */
  appendHeader(name: string, value: string, encode = false): void {
    this.#replaceData(headers.appendHeader(this.getData(), name, value, encode));
  }

  /** `msg:get_first_named_header_value(name)`. */
  getFirstNamedHeaderValue(name: string): string | undefined {
    return headers.getFirstNamedHeaderValue(this.getData(), name);
  }

  /** `msg:get_all_named_header_values(name)`. */
  getAllNamedHeaderValues(name: string): string[] {
    return headers.getAllNamedHeaderValues(this.getData(), name);
  }

  /** `msg:get_all_headers()`. */
  getAllHeaders(): HeaderField[] {
    return headers.getAllHeaders(this.getData());
  }

  /** `msg:remove_all_named_headers(name)`. */
  removeAllNamedHeaders(name: string): void {
    this.#replaceData(headers.removeAllNamedHeaders(this.getData(), name));
  }

  /** `msg:remove_x_headers([names])`. */
  removeXHeaders(names?: readonly string[]): void {
    this.#replaceData(headers.removeXHeaders(this.getData(), names));
  }

  /** `msg:import_x_headers([names])`: sets meta `x_campaign_id` etc. */
  importXHeaders(names?: readonly string[]): void {
    for (const [k, v] of headers.importXHeaders(this.getData(), names)) this.setMeta(k, v);
  }

  /**
   * `msg:import_headers(specs)`: meta from headers by rule, removing the
   * fields of specs with `remove`.
   */
  importHeaders(specs: readonly ImportHeaderSpec[]): void {
    const r = importHeaders(this.getData(), specs);
    for (const [k, v] of r.meta) this.setMeta(k, v);
    this.#replaceData(r.data);
  }

  /**
   * Release the in-memory bytes (`msg:shrink_data()`); the caller has made
   * sure they are in the data spool. Later reads need them loaded again.
   */
  dropData(): void {
    if (this.data !== null) this.#droppedSize = this.data.length;
    this.data = null;
  }

  /** Size of the data in bytes, also while it is dropped (0 when never loaded: spooled in at start). */
  get size(): number {
    return this.data?.length ?? this.#droppedSize;
  }

  #droppedSize = 0;

  // ---- spool records ----

  /** The meta-spool record: `{sender, recipient, meta, schedule?}`. */
  metaRecord(): SpoolMetaRecord {
    const rcpts = this.recipients;
    const rec: SpoolMetaRecord = {
      sender: this.sender.email,
      recipient: rcpts.length === 1 ? rcpts[0].email : rcpts.map((r) => r.email),
      meta: this.meta,
    };
    if (this.scheduling) rec.schedule = this.scheduling;
    return rec;
  }

  /** `metaRecord()` as UTF-8 JSON bytes, ready for the meta spool. */
  metaBytes(): Uint8Array {
    return utf8Encoder.encode(JSON.stringify(this.metaRecord()));
  }

  /**
   * Rebuild a message from its spool records. `due` is now and
   * `numAttempts` 0: neither is persisted (spool-in estimates them).
   *
   * @throws {SyntaxError} when the meta record is not valid JSON or lacks
   * `sender`/`recipient`.
   */
  static fromSpool(
    id: string,
    metaJson: string | Uint8Array | SpoolMetaRecord,
    data: Uint8Array | null,
  ): Message {
    const rec: unknown = typeof metaJson === "string"
      ? JSON.parse(metaJson)
      : metaJson instanceof Uint8Array
      ? JSON.parse(utf8Decoder.decode(metaJson))
      : metaJson;
    if (typeof rec !== "object" || rec === null) {
      throw new SyntaxError(`Cannot load message "${id}" from spool: meta is not an object`);
    }
    const r = rec as Partial<SpoolMetaRecord>;
    if (typeof r.sender !== "string") {
      throw new SyntaxError(`Cannot load message "${id}" from spool: sender is not a string`);
    }
    const rcpt = r.recipient;
    const list = typeof rcpt === "string" ? [rcpt] : rcpt;
    if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) {
      throw new SyntaxError(`Cannot load message "${id}" from spool: bad recipient field`);
    }
    const meta = r.meta;
    const msg = new Message({
      id,
      sender: r.sender === "" ? NULL_SENDER : r.sender,
      recipients: list,
      meta: typeof meta === "object" && meta !== null && !Array.isArray(meta) ? meta : {},
      data,
      scheduling: r.schedule ? parseScheduling(r.schedule) : undefined,
    });
    msg.metaDirty = false;
    msg.dataDirty = false;
    return msg;
  }
}
