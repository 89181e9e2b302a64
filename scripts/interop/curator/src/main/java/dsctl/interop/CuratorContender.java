package dsctl.interop;

import static dsctl.interop.ContenderSupport.emit;
import static dsctl.interop.ContenderSupport.enterMarker;
import static dsctl.interop.ContenderSupport.hold;
import static dsctl.interop.ContenderSupport.leaveMarker;
import static dsctl.interop.ContenderSupport.need;
import static dsctl.interop.ContenderSupport.parse;

import java.nio.file.Path;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.retry.ExponentialBackoffRetry;

/**
 * A contender for dsctl's ZooKeeper lock interoperability tests: takes an Apache Curator
 * lock in a loop and proves exclusion with a critical-section marker shared with the
 * other contenders (dsctl, kazoo).
 *
 * <p>Exclusion check: the critical-section marker of ContenderSupport (scripts/interop/
 * common), one slot per lease with --leases N (semaphore).
 *
 * <p>Output, one line per event on stdout (flushed) and appended to --out when given:
 * {@code ready <ms>}, {@code enter <ms> <node>}, {@code exit <ms> <node>},
 * {@code violation <ms> <what>}, {@code timeout <ms>}, {@code done acquired=N violations=V}.
 * Exit status: 0 all iterations done without violation, 3 violations, 4 an acquire timed
 * out, 2 bad arguments, 1 anything else.
 */
public final class CuratorContender {
    public static void main(String[] args) throws Exception {
        // Curator's and ZooKeeper's INFO lines would drown the events: warnings and up only.
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        Map<String, String> a = parse(args, "curator", "java -jar curator-contender.jar --connect HOST:PORT,... --path /lock/path"
                + " --marker FILE [--recipe mutex|write|read|semaphore] [--leases N] [--iterations N]"
                + " [--hold-ms MS] [--gap-ms MS] [--wait-ms MS] [--side NAME] [--out FILE]"
                + " [--release-file FILE] [--session-timeout-ms MS]");
        String connect = need(a, "connect");
        String path = need(a, "path");
        String recipe = a.getOrDefault("recipe", "mutex");
        int iterations = Integer.parseInt(a.getOrDefault("iterations", "10"));
        long holdMs = Long.parseLong(a.getOrDefault("hold-ms", "10"));
        long gapMs = Long.parseLong(a.getOrDefault("gap-ms", "0"));
        long waitMs = Long.parseLong(a.getOrDefault("wait-ms", "30000"));
        int leases = Integer.parseInt(a.getOrDefault("leases", "1"));
        String marker = need(a, "marker");
        String side = a.getOrDefault("side", "curator");
        // --release-file F: hold until F exists (at most --hold-ms), so a test decides when.
        String releaseFile = a.get("release-file");
        int sessionMs = Integer.parseInt(a.getOrDefault("session-timeout-ms", "10000"));

        int violations = 0;
        int acquired = 0;
        try (CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(connect)
                .sessionTimeoutMs(sessionMs)
                .connectionTimeoutMs(5000)
                .retryPolicy(new ExponentialBackoffRetry(100, 5))
                .build()) {
            client.start();
            if (!client.blockUntilConnected(15, TimeUnit.SECONDS)) {
                System.err.println("curator: cannot connect to " + connect + " within 15s");
                System.exit(1);
            }
            Holder holder = holder(client, recipe, path, leases);
            emit("ready " + System.currentTimeMillis() + " " + recipe);
            for (int i = 0; i < iterations; i++) {
                String node = holder.acquire(waitMs);
                if (node == null) {
                    emit("timeout " + System.currentTimeMillis());
                    emit("done acquired=" + acquired + " violations=" + violations);
                    System.exit(4);
                }
                acquired++;
                emit("enter " + System.currentTimeMillis() + " " + node);
                Path slot = enterMarker(marker, leases, side + " " + node);
                if (slot == null) {
                    violations++;
                }
                hold(holdMs, releaseFile);
                leaveMarker(slot);
                emit("exit " + System.currentTimeMillis() + " " + node);
                holder.release();
                if (gapMs > 0) {
                    Thread.sleep(gapMs);
                }
            }
        }
        emit("done acquired=" + acquired + " violations=" + violations);
        System.exit(violations > 0 ? 3 : 0);
    }

    /** One Curator recipe behind a common acquire/release. */
    interface Holder {
        /** Takes the lock within waitMs; returns our node's name, or null on timeout. */
        String acquire(long waitMs) throws Exception;

        void release() throws Exception;
    }

    static Holder holder(CuratorFramework client, String recipe, String path, int leases) {
        switch (recipe) {
            case "mutex":
                return mutexHolder(new InterProcessMutex(client, path));
            case "write":
                return mutexHolder(new InterProcessReadWriteLock(client, path).writeLock());
            case "read":
                return mutexHolder(new InterProcessReadWriteLock(client, path).readLock());
            case "semaphore":
                InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(client, path, leases);
                return new Holder() {
                    Lease lease;

                    public String acquire(long waitMs) throws Exception {
                        lease = sem.acquire(waitMs, TimeUnit.MILLISECONDS);
                        return lease == null ? null : lease.getNodeName();
                    }

                    public void release() throws Exception {
                        sem.returnLease(lease);
                        lease = null;
                    }
                };
            default:
                System.err.println("curator: --recipe must be mutex, write, read or semaphore, not " + recipe);
                System.exit(2);
                return null;
        }
    }

    static Holder mutexHolder(InterProcessMutex m) {
        return new Holder() {
            public String acquire(long waitMs) throws Exception {
                if (!m.acquire(waitMs, TimeUnit.MILLISECONDS)) {
                    return null;
                }
                // Our node: the participant whose name ends our own lock's node. Curator does
                // not expose it; the first participant is the holder, which we now are (for a
                // mutex and a write lock; a read lock is one of possibly many readers).
                Collection<String> nodes = m.getParticipantNodes();
                return nodes.isEmpty() ? "?" : Path.of(nodes.iterator().next()).getFileName().toString();
            }

            public void release() throws Exception {
                m.release();
            }
        };
    }
}
