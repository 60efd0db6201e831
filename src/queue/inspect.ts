/**
 * Inspection views (http-api §6.4, §6.5): a message as read back from the
 * spool, and a sample of one scheduled queue with its effective config.
 *
 * Place on the path: beside the queues, read-only. It never changes a
 * message, a queue or the spool.
 *
 * @module
 */

import { Message } from "../message/message.ts";
import type { SpoolPair } from "../spool/spool.ts";
import { queueConfigToJSON } from "../policy/config/queue_config.ts";
import type { ScheduledQueue } from "./scheduled_queue.ts";

const lossy = new TextDecoder("utf-8", { fatal: false });

/** The `message` object of an inspection answer. */
export interface MessageView {
  sender: string;
  recipient: string | string[];
  meta: Record<string, unknown>;
  data: string | null;
  scheduling?: Record<string, unknown>;
  due?: string;
  num_attempts?: number;
}

function view(msg: Message, data: Uint8Array | null, wantBody: boolean): MessageView {
  const rcpts = msg.recipients;
  const v: MessageView = {
    sender: msg.sender.email,
    recipient: rcpts.length === 1 ? rcpts[0].email : rcpts.map((r) => r.email),
    meta: msg.meta,
    data: wantBody && data ? lossy.decode(data) : null,
  };
  if (msg.scheduling) v.scheduling = { ...msg.scheduling };
  return v;
}

/**
 * `inspect-message`: read `id` from the spool.
 *
 * @throws {Error} when the id is unknown or its meta cannot be read
 */
export async function inspectMessage(
  spools: SpoolPair,
  id: string,
  wantBody: boolean,
): Promise<{ id: string; message: MessageView }> {
  const meta = await spools.meta.load(id);
  if (meta === null) throw new Error(`Cannot inspect message "${id}": not found in the spool`);
  const data = wantBody ? await spools.data.load(id) : null;
  const msg = Message.fromSpool(id, meta, data);
  return { id, message: view(msg, data, wantBody) };
}

/** Options of {@link inspectScheduledQueue}. */
export interface InspectQueueOptions {
  wantBody: boolean;
  /** Sample size; undefined = all. */
  limit?: number;
  /** Loads bodies not resident in memory. */
  loadData?: (id: string) => Promise<Uint8Array | null>;
}

/** `inspect-sched-q`: a sample of the queue's messages plus its config. */
export async function inspectScheduledQueue(
  q: ScheduledQueue,
  opts: InspectQueueOptions,
): Promise<Record<string, unknown>> {
  const now = Date.now();
  const sample = q.messages(opts.limit ?? Infinity);
  const messages = [];
  for (const msg of sample) {
    let data = msg.data;
    if (opts.wantBody && data === null && opts.loadData) data = await opts.loadData(msg.id);
    const v = view(msg, data, opts.wantBody);
    if (msg.due > now) v.due = new Date(msg.due).toISOString();
    v.num_attempts = msg.numAttempts;
    messages.push({ id: msg.id, message: v });
  }
  return {
    queue_name: q.name,
    messages,
    num_scheduled: q.size,
    queue_config: queueConfigToJSON(q.config),
    delayed_metric: q.size,
    now: new Date(now).toISOString(),
    last_changed: new Date(q.lastChanged).toISOString(),
  };
}
