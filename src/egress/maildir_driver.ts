/**
 * The `maildir_path` delivery protocol (lua-api §6.3): each message is
 * written into a maildir (`tmp/` then renamed into `new/`, as qmail's
 * maildir(5) asks) whose path is a MiniJinja template expanded per message.
 *
 * Template variables: `meta` (the message meta), `local_part`,
 * `domain_part` and `email` (first recipient), `sender`, `domain`,
 * `tenant`, `campaign`, `routing_domain` and `queue` (scheduled queue).
 * `dir_mode` / `file_mode` set the permissions of created directories and
 * files (otherwise the process umask applies).
 *
 * Place on the path: egress, used by a ready queue named
 * `<source>-><routing_domain>@maildir:<template>`. Never logs; a write
 * failure is a TransientFailure value.
 *
 * @module
 */

import { Environment } from "minijinja-js";
import type { Message } from "../message/message.ts";
import { ConfigError } from "../util/config_error.ts";
import {
  type DeliveryDriver,
  type DeliverySession,
  plainResponse,
  type SessionComponents,
  type SessionResult,
} from "./delivery_driver.ts";

/** `maildir_path` settings of a queue config. */
export interface MaildirDriverOptions {
  maildirPath: string;
  dirMode?: number;
  fileMode?: number;
}

let counter = 0;
const HOST = (() => {
  try {
    return Deno.hostname().replace(/[/:]/g, "_");
  } catch {
    return "localhost";
  }
})();

/** A unique maildir file name: `<secs>.M<micros>P<pid>Q<n>.<host>`. */
function uniqueName(): string {
  const now = Date.now();
  const micros = (now % 1000) * 1000 + Math.floor(Math.random() * 1000);
  return `${Math.floor(now / 1000)}.M${micros}P${Deno.pid}Q${++counter}.${HOST}`;
}

async function ensureDir(path: string, mode: number | undefined): Promise<void> {
  try {
    await Deno.stat(path);
    return;
  } catch { /* create below */ }
  await Deno.mkdir(path, { recursive: true, mode });
  if (mode !== undefined) await Deno.chmod(path, mode);
}

async function writeMaildir(
  dir: string,
  data: Uint8Array,
  o: MaildirDriverOptions,
): Promise<string> {
  for (const sub of ["tmp", "new", "cur"]) await ensureDir(`${dir}/${sub}`, o.dirMode);
  const name = uniqueName();
  const tmp = `${dir}/tmp/${name}`;
  await Deno.writeFile(tmp, data, { mode: o.fileMode });
  if (o.fileMode !== undefined) await Deno.chmod(tmp, o.fileMode);
  await Deno.rename(tmp, `${dir}/new/${name}`);
  return name;
}

/**
 * Build the maildir driver of a ready queue; the path template is compiled
 * once (a bad template is a ConfigError).
 *
 * @example
 * ```ts
 * const d = maildirDriver({ maildirPath: "/var/mail/{{ domain_part }}/{{ local_part }}" });
 * const s = await d.open({ domain: "example.test" });
 * await s.send([msg]); // [{ outcome: "Delivery", ... }]
 * ```
 */
export function maildirDriver(o: MaildirDriverOptions): DeliveryDriver {
  const env = new Environment();
  env.enablePyCompat();
  try {
    env.addTemplate("maildir_path", o.maildirPath);
  } catch (e) {
    throw new ConfigError(
      `Cannot compile maildir_path "${o.maildirPath}": ${(e as Error).message}`,
      {
        key: "protocol.maildir_path",
      },
    );
  }
  const expand = (msg: Message, c: SessionComponents): string => {
    const rcpt = msg.recipients[0];
    return env.renderTemplate("maildir_path", {
      meta: msg.meta,
      email: rcpt?.email ?? "",
      local_part: rcpt?.user ?? "",
      domain_part: rcpt?.domain ?? "",
      sender: msg.sender.email,
      domain: c.domain,
      tenant: c.tenant ?? null,
      campaign: c.campaign ?? null,
      routing_domain: c.routingDomain ?? null,
      queue: msg.queueName(),
    });
  };
  return {
    deliveryProtocol: "Maildir",
    peer: null,
    batchSize: 1,
    minBatchSize: 1,
    maxBatchLatency: 0,
    open(c: SessionComponents): Promise<DeliverySession> {
      const session: DeliverySession = {
        closed: false,
        async send(batch: readonly Message[]): Promise<SessionResult[]> {
          const out: SessionResult[] = [];
          for (const msg of batch) {
            try {
              const dir = expand(msg, c);
              const name = await writeMaildir(dir, msg.getData(), o);
              out.push({
                outcome: "Delivery",
                response: plainResponse(200, `Delivered to maildir ${dir} as ${name}`),
              });
            } catch (e) {
              out.push({
                outcome: "TransientFailure",
                response: plainResponse(
                  400,
                  `KumoMTA internal: failed to write to maildir: ${(e as Error).message}`,
                ),
              });
            }
          }
          return out;
        },
        close: () => Promise.resolve(),
      };
      return Promise.resolve(session);
    },
  };
}
