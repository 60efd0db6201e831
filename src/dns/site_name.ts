/**
 * siteName: KumoMTA's compact label for a set of MX hosts, e.g.
 * `(mx1|mx2).mail.example.net`.
 *
 * The DNS stage computes it once per resolution; the egress stage keys ready
 * queues by it (`<source>-><site_name>@smtp_client`), so domains sharing MX
 * hosts share shaping. The exact string is observable in logs and in
 * `get_egress_path_config`, so it must follow the spec's algorithm to the
 * letter (queues-and-delivery §4.2) and must not sort or dedupe hosts itself.
 *
 * @module
 */

/**
 * Factor host names into a site name.
 *
 * Hosts are taken in the given (plan) order, lower-cased, trailing dot
 * ignored; with `port` the `:port` is glued to each name's last label.
 * Empty input (null MX) gives `""`.
 *
 * @example
 * ```ts
 * siteName(["mx1.mail.example.net", "mx2.mail.example.net"]); // "(mx1|mx2).mail.example.net"
 * siteName(["in.mx.test", "b.in.mx.test", "c.in.mx.test"]); // "(b|c)?.in.mx.test"
 * ```
 */
export function siteName(hosts: readonly string[], port?: number): string {
  const reversed: string[][] = [];
  let depth = 0;
  for (const host of hosts) {
    let name = host.toLowerCase();
    if (name.endsWith(".")) name = name.slice(0, -1);
    if (name === "") continue; // null MX target
    if (port !== undefined) name = `${name}:${port}`;
    const labels = name.split(".").reverse();
    reversed.push(labels);
    if (labels.length > depth) depth = labels.length;
  }
  const rendered: string[] = [];
  for (let i = 0; i < depth; i++) {
    const seen: string[] = [];
    let missing = false;
    for (const labels of reversed) {
      if (i >= labels.length) missing = true;
      else if (!seen.includes(labels[i])) seen.push(labels[i]);
    }
    const part = seen.length === 1 ? seen[0] : `(${seen.join("|")})`;
    rendered.push(missing ? `${part}?` : part);
  }
  return rendered.reverse().join(".");
}
