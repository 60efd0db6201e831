/**
 * A small authoritative DNS server for tests: answers MX, A, AAAA, TXT, PTR
 * and CNAME queries from a plain zone object, over UDP and TCP on 127.0.0.1.
 *
 * It stands in for the Internet's DNS when tests exercise the DNS stage
 * (`src/dns/`) and end-to-end delivery; the resolver is pointed at it with a
 * loopback `nameServer`. It must never forward a query anywhere: unknown names
 * get NXDOMAIN, known names without the asked type get NOERROR with no answers.
 *
 * The wire format (RFC 1035 §4) is implemented here: header, question parsing
 * (following compression pointers, RFC 1035 §4.1.4) and answer records.
 *
 * @module
 */

import dgram from "node:dgram";
import net from "node:net";
import type { Buffer } from "node:buffer";
import ipaddr from "ipaddr.js";

/** One MX record: preference and exchange host (`"."` for a null MX, RFC 7505). */
export interface MxRecord {
  pref: number;
  host: string;
}

/** The records of one name. Every field is optional. */
export interface ZoneRecords {
  MX?: MxRecord[];
  A?: string[];
  AAAA?: string[];
  /** Each entry is one TXT record; an array gives several character-strings. */
  TXT?: (string | string[])[];
  PTR?: string[];
  /** An alias: queries for other types follow it (inside the zones only). */
  CNAME?: string;
  /** TTL for this name's records, seconds. @default 300 */
  ttl?: number;
}

/** Zone data keyed by owner name (case-insensitive, trailing dot optional). */
export type Zones = Record<string, ZoneRecords>;

/** Options for {@linkcode startDnsServer}. */
export interface DnsServerOptions {
  /** Initial zone data. @default {} */
  zones?: Zones;
  /** Names answered with SERVFAIL (rcode 2). @default [] */
  servfail?: string[];
  /** Names never answered at all (to exercise timeouts). @default [] */
  drop?: string[];
  /** Names answered over UDP with the TC bit and no records, forcing a TCP retry. @default [] */
  truncate?: string[];
  /** Also serve DNS over TCP on the same port when that port is free. @default true */
  tcp?: boolean;
}

/** One query the server received, for assertions on caching. */
export interface DnsQueryRecord {
  name: string;
  type: string;
  transport: "udp" | "tcp";
}

/** A running test DNS server. */
export interface DnsServer extends AsyncDisposable {
  /** UDP (and TCP) port on 127.0.0.1. */
  readonly port: number;
  /** `"127.0.0.1:PORT"`, the form `kumo.dns.configure_resolver` takes. */
  readonly address: string;
  /** Whether TCP is served too. */
  readonly tcp: boolean;
  /** Every query received, in arrival order. */
  readonly queries: DnsQueryRecord[];
  /** Replace (or with `undefined`, delete) the records of one name. */
  setZone(name: string, records: ZoneRecords | undefined): void;
  /** Make a name answer SERVFAIL (`true`) or normally again (`false`). */
  setServfail(name: string, on: boolean): void;
  /** Stop serving and release the sockets. */
  close(): Promise<void>;
}

const TYPE_CODES: Record<string, number> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  ANY: 255,
};
const TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(TYPE_CODES).map(([k, v]) => [v, k]),
);

const RCODE_NOERROR = 0;
const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;

/** Lower-case and strip the trailing dot: the key used for zone lookups. */
function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

/** A parsed question plus the raw bytes of the question section to echo back. */
interface ParsedQuery {
  id: number;
  flags: number;
  name: string;
  qtype: number;
  qclass: number;
  questionBytes: Uint8Array;
}

/** Read a (possibly compressed) name at `offset`; returns the name and the offset after it. */
function readName(buf: Uint8Array, offset: number): [string, number] {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  for (let hops = 0; hops < 64; hops++) {
    if (pos >= buf.length) throw new RangeError("name runs past the message end");
    const len = buf[pos];
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return [labels.join("."), end];
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) throw new RangeError("truncated compression pointer");
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | buf[pos + 1];
      continue;
    }
    if ((len & 0xc0) !== 0) throw new RangeError("unsupported label type");
    if (pos + 1 + len > buf.length) throw new RangeError("label runs past the message end");
    labels.push(String.fromCharCode(...buf.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  throw new RangeError("too many compression pointers");
}

function parseQuery(buf: Uint8Array): ParsedQuery | undefined {
  if (buf.length < 12) return undefined;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const id = view.getUint16(0);
  const flags = view.getUint16(2);
  const qdcount = view.getUint16(4);
  if (qdcount !== 1) {
    return { id, flags, name: "", qtype: 0, qclass: 0, questionBytes: new Uint8Array(0) };
  }
  const [name, after] = readName(buf, 12);
  if (after + 4 > buf.length) throw new RangeError("truncated question");
  const qtype = view.getUint16(after);
  const qclass = view.getUint16(after + 2);
  // Echo the question uncompressed so pointers in answers can target offset 12.
  const questionBytes = new Uint8Array([...encodeName(name), ...buf.subarray(after, after + 4)]);
  return { id, flags, name, qtype, qclass, questionBytes };
}

function encodeName(name: string): number[] {
  const out: number[] = [];
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  if (trimmed.length > 0) {
    for (const label of trimmed.split(".")) {
      const bytes = new TextEncoder().encode(label);
      if (bytes.length === 0 || bytes.length > 63) {
        throw new RangeError(`Cannot encode DNS name "${name}": bad label length`);
      }
      out.push(bytes.length, ...bytes);
    }
  }
  out.push(0);
  return out;
}

/** Builds answer RRs; `ownerPtr` is a compression pointer to the owner name or its bytes. */
function encodeRr(owner: number[], type: number, ttl: number, rdata: number[]): number[] {
  return [
    ...owner,
    type >> 8,
    type & 0xff,
    0,
    1, // class IN
    (ttl >>> 24) & 0xff,
    (ttl >>> 16) & 0xff,
    (ttl >>> 8) & 0xff,
    ttl & 0xff,
    rdata.length >> 8,
    rdata.length & 0xff,
    ...rdata,
  ];
}

function rdataFor(type: string, value: unknown): number[] {
  switch (type) {
    case "A": {
      const addr = ipaddr.parse(String(value));
      if (addr.kind() !== "ipv4") throw new RangeError(`A record "${value}": not IPv4`);
      return addr.toByteArray();
    }
    case "AAAA": {
      const addr = ipaddr.parse(String(value));
      if (addr.kind() !== "ipv6") throw new RangeError(`AAAA record "${value}": not IPv6`);
      return addr.toByteArray();
    }
    case "MX": {
      const mx = value as MxRecord;
      return [(mx.pref >> 8) & 0xff, mx.pref & 0xff, ...encodeName(mx.host === "." ? "" : mx.host)];
    }
    case "TXT": {
      const parts = Array.isArray(value) ? value : [String(value)];
      const out: number[] = [];
      for (const part of parts) {
        const bytes = new TextEncoder().encode(part);
        // A character-string holds at most 255 bytes (RFC 1035 §3.3): split longer text.
        for (let i = 0; i === 0 || i < bytes.length; i += 255) {
          const chunk = bytes.subarray(i, i + 255);
          out.push(chunk.length, ...chunk);
        }
      }
      return out;
    }
    case "PTR":
    case "CNAME":
      return encodeName(String(value));
    default:
      throw new RangeError(`Cannot encode record type "${type}": unsupported`);
  }
}

/** Start a test DNS server on 127.0.0.1 with an ephemeral port. */
export async function startDnsServer(options: DnsServerOptions = {}): Promise<DnsServer> {
  const zones = new Map<string, ZoneRecords>();
  for (const [name, records] of Object.entries(options.zones ?? {})) {
    zones.set(normalizeName(name), records);
  }
  const servfail = new Set((options.servfail ?? []).map(normalizeName));
  const drop = new Set((options.drop ?? []).map(normalizeName));
  const truncate = new Set((options.truncate ?? []).map(normalizeName));
  const queries: DnsQueryRecord[] = [];

  /** Answer one query message; `undefined` means stay silent. */
  function answer(msg: Uint8Array, transport: "udp" | "tcp"): Uint8Array | undefined {
    let q: ParsedQuery | undefined;
    try {
      q = parseQuery(msg);
    } catch {
      q = undefined;
    }
    if (!q) {
      if (msg.length < 2) return undefined;
      return header(msg[0] << 8 | msg[1], 0, RCODE_FORMERR, 0, 0);
    }
    const key = normalizeName(q.name);
    const typeName = TYPE_NAMES[q.qtype] ?? `TYPE${q.qtype}`;
    queries.push({ name: key, type: typeName, transport });
    if (drop.has(key)) return undefined;
    if (q.questionBytes.length === 0 || q.qclass !== 1) {
      return header(q.id, q.flags, RCODE_NOTIMP, 0, 0);
    }
    if (servfail.has(key)) return response(q, RCODE_SERVFAIL, []);
    if (transport === "udp" && truncate.has(key)) {
      const reply = response(q, RCODE_NOERROR, []);
      reply[2] |= 0x02; // TC: the answer does not fit, ask again over TCP
      return reply;
    }

    const answers: number[][] = [];
    let owner: number[] = [0xc0, 12]; // pointer to the question name
    let current = key;
    let records = zones.get(current);
    if (!records) return response(q, RCODE_NXDOMAIN, []);
    // Follow CNAMEs inside our zones (bounded), as an authoritative server would.
    for (let hops = 0; records?.CNAME && typeName !== "CNAME" && hops < 8; hops++) {
      const ttl = records.ttl ?? 300;
      answers.push(encodeRr(owner, TYPE_CODES.CNAME, ttl, rdataFor("CNAME", records.CNAME)));
      current = normalizeName(records.CNAME);
      owner = encodeName(current);
      records = zones.get(current);
    }
    if (!records) {
      return response(q, answers.length ? RCODE_NOERROR : RCODE_NXDOMAIN, answers);
    }
    const ttl = records.ttl ?? 300;
    const types = typeName === "ANY" ? ["A", "AAAA", "MX", "TXT", "PTR", "CNAME"] : [typeName];
    for (const t of types) {
      const value = (records as Record<string, unknown>)[t];
      if (value === undefined) continue;
      const list = Array.isArray(value) && t !== "CNAME" ? value : [value];
      for (const item of list) answers.push(encodeRr(owner, TYPE_CODES[t], ttl, rdataFor(t, item)));
    }
    return response(q, RCODE_NOERROR, answers);
  }

  function header(id: number, qflags: number, rcode: number, qd: number, an: number): Uint8Array {
    // QR=1, opcode copied, AA=1, RD copied, RA=1.
    const flags = 0x8000 | (qflags & 0x7800) | 0x0400 | (qflags & 0x0100) | 0x0080 | rcode;
    return new Uint8Array([
      id >> 8,
      id & 0xff,
      flags >> 8,
      flags & 0xff,
      0,
      qd,
      an >> 8,
      an & 0xff,
      0,
      0,
      0,
      0,
    ]);
  }

  function response(q: ParsedQuery, rcode: number, answers: number[][]): Uint8Array {
    const head = header(q.id, q.flags, rcode, 1, answers.length);
    const body = answers.flat();
    const out = new Uint8Array(head.length + q.questionBytes.length + body.length);
    out.set(head, 0);
    out.set(q.questionBytes, head.length);
    out.set(body, head.length + q.questionBytes.length);
    return out;
  }

  // node:dgram rather than Deno.listenDatagram: the latter needs --unstable-net,
  // which `deno task test` does not pass.
  const udp = dgram.createSocket("udp4");
  udp.on("message", (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    const reply = answer(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), "udp");
    if (reply && !closed) udp.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    udp.once("error", reject);
    udp.bind(0, "127.0.0.1", () => {
      udp.off("error", reject);
      resolve();
    });
  });
  udp.on("error", () => {}); // a send to a vanished client is not the server's problem
  const port = udp.address().port;

  const tcpSockets = new Set<net.Socket>();
  let tcpServer: net.Server | undefined;
  if (options.tcp ?? true) {
    const server = net.createServer((sock) => serveTcp(sock));
    tcpServer = await new Promise<net.Server | undefined>((resolve) => {
      server.once("error", () => resolve(undefined)); // port taken for TCP: UDP only
      server.listen(port, "127.0.0.1", () => resolve(server));
    });
  }

  function serveTcp(sock: net.Socket): void {
    tcpSockets.add(sock);
    sock.setNoDelay(true);
    let buf = new Uint8Array(0);
    sock.on("data", (chunk: Buffer) => {
      const merged = new Uint8Array(buf.length + chunk.length);
      merged.set(buf, 0);
      merged.set(chunk, buf.length);
      buf = merged;
      while (buf.length >= 2) {
        const len = (buf[0] << 8) | buf[1];
        if (buf.length < 2 + len) break;
        const reply = answer(buf.slice(2, 2 + len), "tcp");
        buf = buf.slice(2 + len);
        if (reply) {
          const framed = new Uint8Array(reply.length + 2);
          framed[0] = reply.length >> 8;
          framed[1] = reply.length & 0xff;
          framed.set(reply, 2);
          sock.write(framed);
        }
      }
    });
    sock.on("error", () => {});
    sock.on("close", () => tcpSockets.delete(sock));
  }

  let closed = false;
  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    const waits: Promise<void>[] = [new Promise((resolve) => udp.close(() => resolve()))];
    if (tcpServer) {
      const server = tcpServer;
      waits.push(new Promise((resolve) => server.close(() => resolve())));
    }
    for (const sock of tcpSockets) sock.destroy();
    await Promise.all(waits);
  }

  return {
    port,
    address: `127.0.0.1:${port}`,
    tcp: tcpServer !== undefined,
    queries,
    setZone(name, records) {
      if (records === undefined) zones.delete(normalizeName(name));
      else zones.set(normalizeName(name), records);
    },
    setServfail(name, on) {
      if (on) servfail.add(normalizeName(name));
      else servfail.delete(normalizeName(name));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
