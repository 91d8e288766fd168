/**
 * Who may talk to the server. The Host a request names must be one the server is reachable as (a web page on
 * an attacker's domain that rebinds its DNS name to 127.0.0.1 sends its own name); the Origin of a browser's
 * request must be the server's own or one `--cors` allowed (a page elsewhere must not drive a local model); API
 * bodies must say they are JSON (a form or `text/plain` POST is what a page can send without a preflight).
 */
import net from 'node:net';
import { fail } from '../errors.js';
import { ApiError } from './api-error.js';

/** Names every machine reaches itself by; the server answers to them whatever it is bound to. */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const WILDCARD = new Set(['0.0.0.0', '[::]']);

/** `*`, or origins as browsers send them (http or https, host, optional port, nothing after). */
export function validateOrigins(origins: readonly string[], option = 'allowedOrigins'): string[] {
  const list = origins.map((o) => o.trim());
  if (list.includes('*') && list.length > 1)
    fail(`${option}: * allows every origin and cannot be combined with others, got "${list.join(',')}"`);
  for (const origin of list) {
    if (origin === '*') continue;
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin)
      fail(
        `${option} takes origins such as http://localhost:3000 (http or https, host, optional port; no path), ` +
          `or *; got "${origin}"`,
      );
  }
  return list;
}

/** `*`, or host names / IP addresses without a port; `.example.com` also allows every subdomain. */
export function validateHosts(hosts: readonly string[], option = 'allowedHosts'): string[] {
  const list = hosts.map((h) => h.trim().toLowerCase());
  if (list.includes('*') && list.length > 1)
    fail(`${option}: * allows every host and cannot be combined with others, got "${list.join(',')}"`);
  return list.map((host) => {
    if (host === '*') return host;
    const name = net.isIPv6(host) ? `[${host}]` : host;
    const parsed = splitHost(name.startsWith('.') ? name.slice(1) : name);
    if (!parsed || parsed.port !== undefined)
      fail(
        `${option} takes host names or IP addresses such as example.com, .example.com (and its subdomains) or ` +
          `192.168.1.5 (no scheme, no port), or *; got "${host}"`,
      );
    return name.startsWith('.') ? `.${parsed.hostname}` : parsed.hostname;
  });
}

/**
 * A Host header's name (lower case, an IPv6 address in brackets, no trailing dot) and port, or undefined when it
 * is not `host[:port]`.
 */
export function splitHost(value: string): { hostname: string; port: number | undefined } | undefined {
  let hostname: string;
  let rest: string;
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    if (end < 0 || !net.isIPv6(value.slice(1, end))) return undefined;
    hostname = value.slice(0, end + 1).toLowerCase();
    rest = value.slice(end + 1);
  } else {
    const colon = value.indexOf(':');
    hostname = (colon < 0 ? value : value.slice(0, colon)).toLowerCase().replace(/\.$/, '');
    rest = colon < 0 ? '' : value.slice(colon);
    if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(hostname)) return undefined;
  }
  if (rest === '') return { hostname, port: undefined };
  if (!/^:[0-9]{1,5}$/.test(rest) || Number(rest.slice(1)) > 65535) return undefined;
  return { hostname, port: Number(rest.slice(1)) };
}

function isIpLiteral(hostname: string): boolean {
  return net.isIPv4(hostname) || (hostname.startsWith('[') && net.isIPv6(hostname.slice(1, -1)));
}

/** The bound address as a Host header names it. */
function asHostname(address: string): string {
  const a = address.toLowerCase();
  return net.isIPv6(a) ? `[${a}]` : a.replace(/\.$/, '');
}

export class HostCheck {
  private readonly names: Set<string>;
  private readonly suffixes: string[];
  private readonly any: boolean;
  private anyIp = false;

  /** `allowed`: validated hosts. Until bind() is called only the loopback names and those are accepted. */
  constructor(allowed: readonly string[]) {
    this.names = new Set([...LOOPBACK, ...allowed.filter((h) => !h.startsWith('.'))]);
    this.suffixes = allowed.filter((h) => h.startsWith('.'));
    this.any = allowed.includes('*');
  }

  /** The addresses the server listens on (as given and as resolved): it answers to them too. */
  bind(addresses: readonly string[]): void {
    for (const address of addresses.map(asHostname)) {
      this.names.add(address);
      // Bound to every interface: reached by any of the machine's addresses. An address is no DNS name, so it
      // cannot be rebound; other names must be allowed.
      if (WILDCARD.has(address)) this.anyIp = true;
    }
  }

  /** Throws the answer for a request whose Host is missing (HTTP/1.0), duplicated, malformed or not allowed. */
  check(rawHeaders: readonly string[], host: string | undefined): void {
    let count = 0;
    for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === 'host') count++;
    if (count > 1)
      throw new ApiError(400, `the request has ${count} Host headers: send one`, null, 'invalid_host');
    if (host === undefined)
      throw new ApiError(400, 'the request has no Host header: send one', null, 'invalid_host');
    if (this.any) return;
    const parsed = splitHost(host);
    if (!parsed)
      throw new ApiError(
        400,
        `the Host header ${JSON.stringify(host.slice(0, 100))} is not host[:port]`,
        null,
        'invalid_host',
      );
    const name = parsed.hostname;
    if (
      this.names.has(name) ||
      (this.anyIp && isIpLiteral(name)) ||
      this.suffixes.some((s) => name.endsWith(s) || name === s.slice(1))
    )
      return;
    throw new ApiError(
      403,
      `this server does not answer to the host "${name}" (a guard against DNS rebinding): start it with ` +
        `--allowed-hosts ${name} (library: allowedHosts) to allow it`,
      null,
      'host_not_allowed',
    );
  }
}

/** Whether `origin` is the page's own: the same host and port as the Host the request was sent to. */
export function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    const page = new URL(origin);
    if (page.protocol !== 'http:' && page.protocol !== 'https:') return false;
    // Behind a TLS proxy the page is https while the Host is the same: the scheme's default port applies.
    return page.host === new URL(`${page.protocol}//${host}`).host;
  } catch {
    return false;
  }
}

/** Throws a 415 unless `contentType` is application/json (a charset, if any, utf-8). */
export function requireJson(contentType: string | undefined): void {
  if (contentType === undefined)
    throw new ApiError(
      415,
      'the request has no Content-Type: send the JSON body with Content-Type: application/json',
      null,
      'unsupported_media_type',
    );
  const [type, ...params] = contentType.split(';');
  const mediaType = type!.trim().toLowerCase();
  if (mediaType !== 'application/json')
    throw new ApiError(
      415,
      `Content-Type must be application/json, got ${JSON.stringify(mediaType.slice(0, 100))}`,
      null,
      'unsupported_media_type',
    );
  for (const param of params) {
    const eq = param.indexOf('=');
    if (param.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const charset = param
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8')
      throw new ApiError(
        415,
        `JSON bodies are UTF-8: charset=${JSON.stringify(charset.slice(0, 40))} is not supported`,
        null,
        'unsupported_media_type',
      );
  }
}
