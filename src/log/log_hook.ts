/**
 * Log hooks (`kumo.configure_log_hook`, logs §6): every log record becomes
 * a new message — sender and recipient(s) of the record, meta = the hook's
 * captured meta plus `log_record` (the record as an object) and
 * `reception_protocol = "LogRecord"`, body = the JSON line (or the
 * `per_record` template output) — which the policy's
 * `should_enqueue_log_record(msg, hook_name)` may send on: then it is
 * spooled (unless `deferred_spool`) and queued by its queue name, usually a
 * `custom_lua` queue (`policy-extras.log_hooks`).
 *
 * Place on the path: beside the local loggers, fed by the same
 * LogDispatcher. It never logs records of log-hook messages themselves
 * (their `reception_protocol` is `LogRecord`: no loops), never blocks a
 * producer (decisions run in the background, at most `concurrency` at
 * once) and never imports the policy or queue stages: both come in as
 * callbacks from server.ts.
 *
 * @module
 */

import nunjucks from "nunjucks";
import { Message } from "../message/message.ts";
import { captureHeaders, captureMeta, type CaptureSpec, compileCapture } from "./capture.ts";
import { diag } from "./diag.ts";
import type { LogContext, LogSink, PerRecordConfig } from "./local_logger.ts";
import { type LogRecord, RECORD_TYPES, recordToObject, serializeRecord } from "./record.ts";
import { ConfigError } from "../util/config_error.ts";
import { countLogHookBacklog } from "../metrics/kumo_metrics.ts"; // [metrics]

/** Settings of one hook (a converted `configure_log_hook`). */
export interface LogHookSettings {
  name: string;
  /** Records waiting for a decision before further ones are dropped. */
  backPressure: number;
  meta: string[];
  headers: string[];
  /** Keyed by record type or `Any`; `enable` and `template` apply. */
  perRecord: Record<string, PerRecordConfig | undefined>;
  deferredSpool: boolean;
}

/** What the hook calls out to. */
export interface LogHookOptions {
  /** `should_enqueue_log_record(msg, hookName)`; true = queue it. */
  shouldEnqueue(msg: Message, hookName: string): Promise<boolean>;
  /** Spool (unless `deferredSpool`) and queue the message. */
  enqueue(msg: Message, deferredSpool: boolean): Promise<void>;
  /** Cheap check skipping all work (e.g. no `should_enqueue_log_record` handler). */
  active?: () => boolean;
  /** Decisions running at once. @default 32 */
  concurrency?: number;
}

interface TemplateLike {
  render(ctx: Record<string, unknown>): string;
}

const encoder = new TextEncoder();

/**
 * One `configure_log_hook` instance, registered with the LogDispatcher.
 *
 * @example
 * ```ts
 * logs.add(new LogHook(settings, { shouldEnqueue, enqueue }));
 * ```
 */
export class LogHook implements LogSink {
  readonly settings: LogHookSettings;
  #o: LogHookOptions;
  #meta: CaptureSpec;
  #headers: CaptureSpec;
  /** type → template (null = JSON line); absent type = disabled. */
  #routes = new Map<string, TemplateLike | null>();
  #backlog: Message[] = [];
  #running = 0;
  #idle: (() => void)[] = [];
  #dropped = 0;

  constructor(settings: LogHookSettings, options: LogHookOptions) {
    this.settings = settings;
    this.#o = options;
    this.#meta = compileCapture(settings.meta, false);
    this.#headers = compileCapture(settings.headers, true);
    for (const type of RECORD_TYPES) {
      const pr = settings.perRecord[type] ?? settings.perRecord.Any;
      if (pr !== undefined && pr.enable === false) continue;
      this.#routes.set(type, pr?.template ? compile(pr.template, settings.name, type) : null);
    }
  }

  /** LogSink: turn the record into a log message and decide about it in the background. */
  log(record: LogRecord, ctx: LogContext): void {
    if (record.reception_protocol === "LogRecord") return; // never feed log messages back
    const template = this.#routes.get(record.type);
    if (template === undefined) return;
    if (this.#o.active && !this.#o.active()) return;
    let msg: Message;
    try {
      msg = this.#build(record, ctx, template);
    } catch (e) {
      diag.error("kumod::logging", `Cannot build log hook "${this.settings.name}" message: ${e}`);
      return;
    }
    if (this.#backlog.length >= this.settings.backPressure) {
      countLogHookBacklog(this.settings.name); // [metrics]
      if (this.#dropped++ % 1000 === 0) {
        diag.error(
          "kumod::logging",
          `Dropping log hook "${this.settings.name}" record: back_pressure ${this.settings.backPressure} reached`,
        );
      }
      return;
    }
    this.#backlog.push(msg);
    this.#pump();
  }

  #build(record: LogRecord, ctx: LogContext, template: TemplateLike | null): Message {
    const captured = {
      meta: captureMeta(this.#meta, ctx.meta),
      headers: captureHeaders(this.#headers, ctx.getAllHeaders),
    };
    const obj = recordToObject(record, captured);
    let body: string;
    if (template === null) body = serializeRecord(record, captured) + "\n";
    else {
      body = template.render({ ...obj, log_record: obj });
      if (!body.endsWith("\n")) body += "\n";
    }
    const r = record.recipient;
    return new Message({
      sender: record.sender,
      recipients: Array.isArray(r) ? r : [r],
      meta: { ...captured.meta, log_record: obj, reception_protocol: "LogRecord" },
      data: encoder.encode(body),
    });
  }

  #pump(): void {
    const limit = this.#o.concurrency ?? 32;
    while (this.#running < limit && this.#backlog.length > 0) {
      const msg = this.#backlog.shift()!;
      this.#running++;
      this.#decide(msg).finally(() => {
        this.#running--;
        this.#pump();
        if (this.#running === 0 && this.#backlog.length === 0) {
          for (const f of this.#idle.splice(0)) f();
        }
      });
    }
  }

  async #decide(msg: Message): Promise<void> {
    const name = this.settings.name;
    try {
      if (!(await this.#o.shouldEnqueue(msg, name))) return;
    } catch (e) {
      diag.error("kumod::logging", `Error in should_enqueue_log_record for "${name}": ${e}`);
      return;
    }
    try {
      await this.#o.enqueue(msg, this.settings.deferredSpool);
    } catch (e) {
      diag.error("kumod::logging", `Cannot queue log hook "${name}" message "${msg.id}": ${e}`);
    }
  }

  /** Resolve when every record so far has been decided and queued. */
  flush(): Promise<void> {
    if (this.#running === 0 && this.#backlog.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  /** Same as flush: the hook holds no files. */
  close(): Promise<void> {
    return this.flush();
  }
}

function compile(source: string, hook: string, type: string): TemplateLike {
  try {
    const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: false });
    return new nunjucks.Template(source, env, undefined, true) as TemplateLike;
  } catch (err) {
    throw new ConfigError(
      `Cannot compile log hook "${hook}" template for "${type}": ${(err as Error).message}`,
      { key: `per_record.${type}.template` },
    );
  }
}
