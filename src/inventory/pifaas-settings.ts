// Why: pifaas reads its own settings from `pifaas_`-prefixed inventory variables so that the same
// inventory still drives ansible-playbook. This schema is the one list of those settings: an unknown
// `pifaas_` key is an error (a typo must not be silently ignored), and each value is checked here.
import { isIPv4 } from 'node:net';
import { z } from 'zod';

const ipv4 = z.string().refine((s) => isIPv4(s), { message: 'expected an IPv4 address, like 192.168.1.1' });

const ipv4WithPrefix = z.string().refine(
  (s) => {
    const [addr, prefix, extra] = s.split('/');
    return extra === undefined && addr !== undefined && isIPv4(addr) && prefix !== undefined && /^\d{1,2}$/.test(prefix) && Number(prefix) <= 32;
  },
  { message: 'expected an IPv4 address with its prefix length, like 192.168.1.11/24' },
);

/** RFC 1123 host name label: what Raspberry Pi OS accepts in /etc/hostname. */
export const hostnameSchema = z
  .string()
  .regex(/^(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$/, 'expected a host name of letters, digits and hyphens (at most 63, no leading or trailing hyphen)');

/** The settings, without their `pifaas_` prefix. Every one is optional; `all` and group vars give defaults. */
export const pifaasSettingsSchema = z
  .object({
    // --- first boot (pifaas burn) ---
    /** Host name written to the card; defaults to the inventory name. */
    hostname: hostnameSchema.optional(),
    /** Static address with prefix length; without it the node uses DHCP. */
    static_ip: ipv4WithPrefix.optional(),
    gateway: ipv4.optional(),
    dns: z.array(ipv4).optional(),
    wifi_ssid: z.string().min(1).max(32).optional(),
    /** Prefer the PIFAAS_WIFI_PASSWORD environment variable or the prompt over writing it here. */
    wifi_password: z.string().min(8, 'a WPA2 passphrase has 8 to 63 characters').max(63, 'a WPA2 passphrase has 8 to 63 characters').optional(),
    /** The Wi-Fi network does not broadcast its SSID (pifaas burn). */
    wifi_hidden: z.boolean().optional(),
    wifi_country: z.string().regex(/^[A-Z]{2}$/, 'expected a two-letter ISO 3166 country code, like GB').optional(),
    timezone: z.string().regex(/^[A-Za-z_+-]+(\/[A-Za-z0-9_+-]+)*$/, 'expected a tz database name, like Europe/London').optional(),
    keyboard_layout: z.string().regex(/^[a-z]{2,}$/, 'expected an XKB layout, like gb or us').optional(),
    locale: z.string().optional(),
    /** SSH public keys for the user: key text ("ssh-ed25519 AAAA...") or paths to .pub files. */
    ssh_public_keys: z.array(z.string().min(1)).optional(),
    /** crypt(3) hash of the user's password ($6$ / $y$ / $5$); never the password itself. */
    password_hash: z
      .string()
      .regex(/^\$(6|5|y|2[aby])\$[^\s]+$/, 'expected a crypt(3) hash such as $6$... (make one with `openssl passwd -6`), never a plain password')
      .optional(),

    // --- provisioning (pifaas provision) ---
    /** How to install Docker Engine when it is absent. */
    docker_install: z.enum(['package', 'convenience-script']).optional(),
    /** SSH known_hosts file for this host (relative to the inventory's folder); default ~/.ssh/known_hosts or UserKnownHostsFile. */
    known_hosts_file: z.string().min(1).optional(),
    /** Address the node advertises to the swarm; defaults to ansible_host. */
    advertise_addr: ipv4.optional(),
    /** Extra swarm node labels. */
    node_labels: z.record(z.string(), z.string()).optional(),
    /** Add the memory cgroup flags to cmdline.txt and reboot when they are missing (Pi only). */
    fix_cgroups: z.boolean().optional(),

    // --- OpenFaaS (read from `all` vars) ---
    /** How the gateway port is published: ingress (routing mesh) or host (kernels without IPVS). */
    openfaas_publish: z.enum(['ingress', 'host']).optional(),
    openfaas_gateway_port: z.number().int().min(1).max(65535).optional(),
  })
  .strict();

export type PifaasSettings = z.infer<typeof pifaasSettingsSchema>;
export const PIFAAS_PREFIX = 'pifaas_';
