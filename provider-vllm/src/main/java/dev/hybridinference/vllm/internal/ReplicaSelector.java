package dev.hybridinference.vllm.internal;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Orders the replicas for one call. Without a session id: least loaded first (queued requests plus
 * calls in flight, then KV-cache usage), ties broken in rotation. With a session id: the replica the id
 * hashes to on a consistent-hash ring first, so every turn of a conversation lands where its prefix
 * cache is, unless that replica is down or its queue is at least {@code affinityMaxWaiting} deep. The
 * other replicas follow, least loaded first, as failover targets. Down replicas come last. Thread-safe.
 * Internal.
 */
public final class ReplicaSelector {
    private static final int VIRTUAL_NODES = 128;
    private static final Comparator<Replica> BY_LOAD =
            Comparator.comparingDouble(Replica::load).thenComparingDouble(ReplicaSelector::kv);

    private final List<Replica> replicas;
    private final long[] ringHashes;
    private final int[] ringOwners;
    private final double affinityMaxWaiting;
    private final AtomicInteger rotation = new AtomicInteger();
    private final Choice single;

    /** A selector over {@code replicas}. */
    public ReplicaSelector(List<Replica> replicas, double affinityMaxWaiting) {
        this.replicas = List.copyOf(replicas);
        this.affinityMaxWaiting = affinityMaxWaiting;
        this.single = replicas.size() == 1
                ? new Choice(
                        List.of(replicas.get(0)),
                        "single replica " + replicas.get(0).label())
                : null;
        int n = replicas.size() * VIRTUAL_NODES;
        long[][] points = new long[n][2];
        int k = 0;
        for (Replica r : replicas) {
            for (int v = 0; v < VIRTUAL_NODES; v++) {
                points[k][0] = hash(r.label() + "#" + v);
                points[k][1] = r.index();
                k++;
            }
        }
        Arrays.sort(points, Comparator.comparingLong(p -> p[0]));
        ringHashes = new long[n];
        ringOwners = new int[n];
        for (int i = 0; i < n; i++) {
            ringHashes[i] = points[i][0];
            ringOwners[i] = (int) points[i][1];
        }
    }

    /** A choice: replicas in the order to try, and why the first was chosen. */
    public record Choice(List<Replica> order, String reason) {}

    /** The replicas in the order to try for a call with {@code sessionId} (null for none). */
    public Choice choose(String sessionId) {
        if (single != null) {
            return single;
        }
        List<Replica> up = new ArrayList<>(replicas.size());
        List<Replica> down = new ArrayList<>(0);
        for (Replica r : replicas) {
            (r.isUp() ? up : down).add(r);
        }
        int start = Math.floorMod(rotation.getAndIncrement(), Math.max(1, up.size()));
        List<Replica> byLoad = new ArrayList<>(up.size());
        for (int i = 0; i < up.size(); i++) {
            byLoad.add(up.get((start + i) % up.size()));
        }
        byLoad.sort(BY_LOAD);
        String reason;
        if (up.isEmpty()) {
            reason = "all replicas marked down, trying anyway";
        } else if (sessionId == null) {
            reason = "least loaded";
        } else {
            Replica sticky = owner(sessionId, up);
            double waiting = sticky.metrics().waiting();
            if (!Double.isNaN(waiting) && waiting >= affinityMaxWaiting) {
                reason = "least loaded (session replica " + sticky.label() + " has " + (long) waiting + " waiting)";
            } else {
                // Failover follows the ring too, so a session whose replica dies settles on one successor.
                byLoad = ringOrder(sessionId, up);
                reason = "session affinity";
            }
        }
        if (!byLoad.isEmpty()) {
            reason = reason + ": " + describe(byLoad.get(0));
        }
        byLoad.addAll(down);
        return new Choice(byLoad, reason);
    }

    /** The first replica at or after the session's point on the ring that is among {@code candidates}. */
    Replica owner(String sessionId, List<Replica> candidates) {
        return ringOrder(sessionId, candidates).get(0);
    }

    /** {@code candidates} in the order the ring meets them, walking on from the session's point. */
    List<Replica> ringOrder(String sessionId, List<Replica> candidates) {
        long h = hash(sessionId);
        int i = Arrays.binarySearch(ringHashes, h);
        if (i < 0) {
            i = -i - 1;
        }
        boolean[] allowed = new boolean[replicas.size()];
        for (Replica r : candidates) {
            allowed[r.index()] = true;
        }
        List<Replica> order = new ArrayList<>(candidates.size());
        for (int step = 0; step < ringHashes.length && order.size() < candidates.size(); step++) {
            int owner = ringOwners[(i + step) % ringHashes.length];
            if (allowed[owner]) {
                allowed[owner] = false;
                order.add(replicas.get(owner));
            }
        }
        return order;
    }

    private static double kv(Replica r) {
        double kv = r.metrics().kvCacheUsage();
        return Double.isNaN(kv) ? 0 : kv;
    }

    private static String describe(Replica r) {
        double waiting = r.metrics().waiting();
        return r.label() + ": " + (Double.isNaN(waiting) ? "?" : String.valueOf((long) waiting)) + " waiting, "
                + r.inFlight() + " in flight";
    }

    /** A 64-bit FNV-1a hash with a final avalanche mix, stable across JVMs. */
    static long hash(String s) {
        long h = 0xcbf29ce484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xff;
            h *= 0x100000001b3L;
        }
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        h *= 0xc4ceb9fe1a85ec53L;
        h ^= h >>> 33;
        return h;
    }
}
