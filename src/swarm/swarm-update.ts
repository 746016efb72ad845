// Why: swarm updates (of a node, of a service) are optimistic. Each names the version of the object
// it was made from, and one that lost a race with another update of that object answers "update out
// of sequence" (a worker that has just joined makes such a race with its node; another `pifaas
// openfaas install`, a `docker service update` or swarm's own rollback with a service). The one
// answer that helps is to read the object again and make the edit again on what it is now, which
// this module does for every swarm object pifaas updates.

/** swarmkit's answer to an update that names a version of the object that is no longer current. */
const OUT_OF_SEQUENCE = /update out of sequence/i;

/** A swarm object as the Engine API returns it: every one carries the version updates must name. */
export interface VersionedSwarmObject {
  Version?: { Index?: number };
}

export interface OptimisticUpdate<T extends VersionedSwarmObject, W> {
  /** The object as last read. */
  current: T;
  /** The change wanted of the object as it is, or undefined when it is as wanted. */
  edit: (object: T) => Promise<W | undefined> | W | undefined;
  /** Sends the change, naming `version` (the object's version it was made from). */
  write: (wanted: W, version: number | undefined) => Promise<unknown>;
  /** Reads the object again, after a lost race. */
  reread: () => Promise<T>;
  /** How many times the edit is made before swarm's answer stands. Default 5. */
  attempts?: number;
}

/**
 * Makes `edit` on the object and sends it; after "update out of sequence", reads the object again and
 * makes the edit again on what it is now, up to `attempts` times (100 ms, 200 ms, ... apart). Returns
 * the object the edit was last made on and the change sent (undefined: it was already as wanted).
 */
export async function updateOptimistically<T extends VersionedSwarmObject, W>(u: OptimisticUpdate<T, W>): Promise<{ object: T; sent: W | undefined }> {
  const attempts = u.attempts ?? 5;
  let object = u.current;
  for (let attempt = 1; ; attempt++) {
    const wanted = await u.edit(object);
    if (wanted === undefined) return { object, sent: undefined };
    try {
      await u.write(wanted, object.Version?.Index);
      return { object, sent: wanted };
    } catch (e) {
      if (attempt >= attempts || !OUT_OF_SEQUENCE.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 100 * attempt));
      object = await u.reread();
    }
  }
}
