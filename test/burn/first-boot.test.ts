// Small pure pieces of the first-boot formats: the WPA PSK derivation (IEEE 802.11i test vector),
// kernel command line editing, TOML string quoting.
import { describe, expect, it } from 'vitest';
import { addCgroupFlags, pifaasKernelParams, setKernelParams } from '../../src/burn/cmdline.js';
import { tomlString, wpaPsk } from '../../src/burn/first-boot.js';

describe('first-boot pieces', () => {
  it('derives the WPA PSK like wpa_passphrase (IEEE 802.11i vector) and passes a 64-hex PSK through', () => {
    expect(wpaPsk('IEEE', 'password')).toBe('f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e');
    expect(wpaPsk('x', 'A'.repeat(64))).toBe('a'.repeat(64));
  });

  it('sets kernel parameters once, on the first line, replacing old values and duplicates, keeping other lines', () => {
    const params = pifaasKernelParams('DE');
    const once = setKernelParams('console=tty1 root=PARTUUID=1-02 rootwait cfg80211.ieee80211_regdom=GB cgroup_memory=0 cgroup_memory=1\n\nsecond line', params);
    expect(once).toBe('console=tty1 root=PARTUUID=1-02 rootwait cfg80211.ieee80211_regdom=DE cgroup_memory=1 cgroup_enable=memory\n\nsecond line');
    expect(setKernelParams(once, params)).toBe(once);
  });

  it("adds the memory cgroup flags to a Pi's cmdline.txt beside other cgroup_enable values, dropping cgroup_disable=memory", () => {
    const line = 'console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 fsck.repair=yes rootwait\n';
    const fixed = addCgroupFlags(line);
    expect(fixed).toBe('console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 fsck.repair=yes rootwait cgroup_enable=memory cgroup_memory=1\n');
    expect(addCgroupFlags(fixed)).toBe(fixed);
    expect(addCgroupFlags('root=/dev/mmcblk0p2 cgroup_enable=cpuset cgroup_disable=memory cgroup_enable=memory quiet')).toBe(
      'root=/dev/mmcblk0p2 cgroup_enable=cpuset cgroup_enable=memory quiet cgroup_memory=1\n',
    );
  });

  it('quotes TOML strings', () => {
    expect(tomlString('a "b" \\ c\n')).toBe('"a \\"b\\" \\\\ c\\u000a"');
  });
});
