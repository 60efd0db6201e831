/**
 * The DNS stage: resolver, MX resolution, site names and connection plans.
 *
 * Downstream of the queue (which asks for site names) and upstream of the
 * SMTP client (which receives connection plans). Imports only `ipaddr.js` and
 * Node's `dgram`/`net` (for the DNS wire client).
 *
 * @module
 */

export {
  DnsError,
  type DnsErrorCode,
  DnsNxDomainError,
  type DnsRecordType,
  DnsTimeoutError,
  type MxRecord,
  type NameServer,
  Resolver,
  type ResolverOptions,
  reverseName,
} from "./resolver.ts";
export {
  buildConnectionPlan,
  type ConnectionPlanOptions,
  type ConnectionTarget,
  type IpLookupStrategy,
  type MailExchanger,
  type MxListEntry,
  type MxTarget,
  resolveMailExchanger,
  resolveMxList,
} from "./mail_exchanger.ts";
export { siteName } from "./site_name.ts";
