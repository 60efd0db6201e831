/**
 * queryDns: one DNS question to an explicit name server, over UDP with a TCP
 * retry when the answer is truncated (RFC 1035 §4.2, RFC 7766).
 *
 * Sits under `Resolver` (DNS stage, before connection plans are built) when
 * name servers are configured. It exists because `Deno.resolveDns` reports
 * NXDOMAIN, NODATA and SERVFAIL all as `NotFound` and hides TTLs, while the
 * delivery path must tell them apart and cache for the record TTL. It never
 * caches or retries across servers: `Resolver` does that.
 *
 * @module
 */

import dgram from "node:dgram";
import net from "node:net";
import { Buffer } from "node:buffer";

/** Record types the DNS stage asks for. */
export type DnsRecordType = "A" | "AAAA" | "MX" | "TXT" | "PTR";

/** Numeric RR type codes (RFC 1035 §3.2.2, RFC 3596). */
const TYPE_CODE: Record<DnsRecordType | "CNAME" | "SOA", number> = {
  A: 1,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
};

/** One decoded answer record of the asked type. */
export type DnsRecordData =
  | { type: "A" | "AAAA" | "PTR"; ttl: number; value: string }
  | { type: "MX"; ttl: number; preference: number; exchange: string }
  | { type: "TXT"; ttl: number; parts: string[] };

/** The decoded reply to one question. */
export interface DnsReply {
  /** Response code: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED (RFC 1035 §4.1.1). */
  rcode: number;
  /** Records of the asked type (CNAMEs followed by the server are skipped). */
  records: DnsRecordData[];
  /** Negative-caching TTL from the authority SOA (RFC 2308 §5), seconds, when present. */
  negativeTtl?: number;
}

/** Where to send a question. */
export interface DnsServerAddress {
  ip: string;
  port: number;
}

/** Thrown when the server does not answer within the time allowed. */
export class DnsQueryTimeout extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DnsQueryTimeout";
  }
}

/** Encode a name as length-prefixed labels (no compression). */
function encodeName(name: string, out: number[]): void {
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  if (trimmed.length > 0) {
    for (const label of trimmed.split(".")) {
      const bytes = new TextEncoder().encode(label);
      if (bytes.length === 0 || bytes.length > 63) {
        throw new RangeError(`Cannot query DNS name "${name}": bad label length`);
      }
      out.push(bytes.length);
      for (const b of bytes) out.push(b);
    }
  }
  out.push(0);
}

/** Build a query message with recursion desired. */
export function encodeQuery(id: number, name: string, type: DnsRecordType): Uint8Array {
  const out = [id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  encodeName(name, out);
  const code = TYPE_CODE[type];
  out.push(code >> 8, code & 0xff, 0, 1);
  return new Uint8Array(out);
}

/** Read a possibly compressed name (RFC 1035 §4.1.4); returns it and the offset after it. */
function readName(buf: Uint8Array, offset: number): [string, number] {
  let name = "";
  let pos = offset;
  let end = -1;
  for (let hops = 0; hops < 128; hops++) {
    if (pos >= buf.length) throw new RangeError("DNS name runs past the message end");
    const len = buf[pos];
    if (len === 0) return [name === "" ? "." : name, end < 0 ? pos + 1 : end];
    if ((len & 0xc0) === 0xc0) {
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | buf[pos + 1];
      continue;
    }
    if (pos + 1 + len > buf.length) throw new RangeError("DNS label runs past the message end");
    name += String.fromCharCode(...buf.subarray(pos + 1, pos + 1 + len)).toLowerCase() + ".";
    pos += 1 + len;
  }
  throw new RangeError("DNS name has too many compression pointers");
}

function formatIpv6(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // Compress the longest run of zero groups (RFC 5952 §4.2).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  const head = groups.slice(0, bestStart).join(":");
  const tail = groups.slice(bestStart + bestLen).join(":");
  return `${head}::${tail}`;
}

/**
 * Decode a reply to a question with the given id and type.
 * Returns `undefined` for a message that is not a reply to that question.
 */
export function decodeReply(
  buf: Uint8Array,
  id: number,
  name: string,
  type: DnsRecordType,
): (DnsReply & { truncated: boolean }) | undefined {
  if (buf.length < 12) return undefined;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint16(0) !== id) return undefined;
  const flags = view.getUint16(2);
  if ((flags & 0x8000) === 0) return undefined;
  const truncated = (flags & 0x0200) !== 0;
  const rcode = flags & 0x000f;
  const qdcount = view.getUint16(4);
  const ancount = view.getUint16(6);
  const nscount = view.getUint16(8);
  let pos = 12;
  const wanted = name.toLowerCase().replace(/\.?$/, ".");
  for (let i = 0; i < qdcount; i++) {
    const [qname, after] = readName(buf, pos);
    if (qname !== wanted) return undefined; // not our question (RFC 5452 §9.1)
    pos = after + 4;
  }
  const wantCode = TYPE_CODE[type];
  const records: DnsRecordData[] = [];
  let negativeTtl: number | undefined;
  for (let i = 0; i < ancount + nscount; i++) {
    const [, after] = readName(buf, pos);
    pos = after;
    if (pos + 10 > buf.length) throw new RangeError("DNS record header runs past the message end");
    const rtype = view.getUint16(pos);
    const ttl = view.getUint32(pos + 4);
    const rdlen = view.getUint16(pos + 8);
    const rdata = pos + 10;
    pos = rdata + rdlen;
    if (pos > buf.length) throw new RangeError("DNS record data runs past the message end");
    if (i >= ancount) {
      if (rtype === TYPE_CODE.SOA) {
        const [, afterMname] = readName(buf, rdata);
        const [, afterRname] = readName(buf, afterMname);
        const minimum = view.getUint32(afterRname + 16);
        negativeTtl = Math.min(ttl, minimum);
      }
      continue;
    }
    if (rtype !== wantCode) continue;
    switch (type) {
      case "A":
        records.push({ type, ttl, value: buf.subarray(rdata, rdata + 4).join(".") });
        break;
      case "AAAA":
        records.push({ type, ttl, value: formatIpv6(buf.subarray(rdata, rdata + 16)) });
        break;
      case "PTR":
        records.push({ type, ttl, value: readName(buf, rdata)[0] });
        break;
      case "MX":
        records.push({
          type,
          ttl,
          preference: view.getUint16(rdata),
          exchange: readName(buf, rdata + 2)[0],
        });
        break;
      case "TXT": {
        const parts: string[] = [];
        const decoder = new TextDecoder();
        for (let p = rdata; p < pos;) {
          const len = buf[p];
          parts.push(decoder.decode(buf.subarray(p + 1, p + 1 + len)));
          p += 1 + len;
        }
        records.push({ type, ttl, parts });
        break;
      }
    }
  }
  return { rcode, records, negativeTtl, truncated };
}

let nextId = Math.floor(Math.random() * 0x10000);

/**
 * Ask one server one question. Resends over UDP every `retryMs` until
 * `timeoutMs` has passed, and repeats over TCP when the UDP answer is truncated.
 *
 * @example
 * ```ts
 * const reply = await queryDns({ ip: "127.0.0.1", port: 5353 }, "example.test", "MX", { timeoutMs: 2000 });
 * ```
 */
export async function queryDns(
  server: DnsServerAddress,
  name: string,
  type: DnsRecordType,
  options: { timeoutMs: number; retryMs?: number },
): Promise<DnsReply> {
  nextId = (nextId + 1 + Math.floor(Math.random() * 1000)) & 0xffff;
  const id = nextId;
  const query = encodeQuery(id, name, type);
  const udp = await queryUdp(server, query, id, name, type, options);
  if (!udp.truncated) return udp;
  return await queryTcp(server, query, id, name, type, options.timeoutMs);
}

function queryUdp(
  server: DnsServerAddress,
  query: Uint8Array,
  id: number,
  name: string,
  type: DnsRecordType,
  options: { timeoutMs: number; retryMs?: number },
): Promise<DnsReply & { truncated: boolean }> {
  const family = server.ip.includes(":") ? "udp6" : "udp4";
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(family);
    let done = false;
    const finish = (err: Error | undefined, reply?: DnsReply & { truncated: boolean }) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      clearInterval(resend);
      sock.close();
      if (err) reject(err);
      else resolve(reply!);
    };
    const send = () => sock.send(query, server.port, server.ip, (err) => err && finish(err));
    const deadline = setTimeout(
      () => finish(new DnsQueryTimeout(`Cannot resolve "${name}" ${type}: timed out`)),
      options.timeoutMs,
    );
    const resend = setInterval(send, options.retryMs ?? 1000);
    sock.on("error", (err) => finish(err));
    sock.on("message", (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      if (rinfo.port !== server.port) return;
      try {
        const reply = decodeReply(new Uint8Array(msg), id, name, type);
        if (reply) finish(undefined, reply);
      } catch (err) {
        finish(err as Error);
      }
    });
    send();
  });
}

function queryTcp(
  server: DnsServerAddress,
  query: Uint8Array,
  id: number,
  name: string,
  type: DnsRecordType,
  timeoutMs: number,
): Promise<DnsReply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: server.ip, port: server.port });
    sock.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (err: Error | undefined, reply?: DnsReply) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      sock.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const deadline = setTimeout(
      () => finish(new DnsQueryTimeout(`Cannot resolve "${name}" ${type} over TCP: timed out`)),
      timeoutMs,
    );
    sock.on("connect", () => {
      const framed = Buffer.alloc(query.length + 2);
      framed.writeUInt16BE(query.length, 0);
      framed.set(query, 2);
      sock.write(framed);
    });
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2) return;
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) return;
      try {
        const reply = decodeReply(new Uint8Array(buf.subarray(2, 2 + len)), id, name, type);
        if (reply) finish(undefined, reply);
        else finish(new Error(`Cannot resolve "${name}" ${type} over TCP: mismatched reply`));
      } catch (err) {
        finish(err as Error);
      }
    });
    sock.on("error", (err) => finish(err));
    sock.on("close", () => finish(new Error(`Cannot resolve "${name}" ${type} over TCP: closed`)));
  });
}
