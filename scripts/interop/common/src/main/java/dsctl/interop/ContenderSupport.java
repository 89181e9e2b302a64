package dsctl.interop;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What the Java contenders of dsctl's interoperability tests (CuratorContender,
 * ShedLockContender) share: their arguments, their event lines, holding until a release
 * file appears, and the critical-section marker. scripts/interop/setup compiles this file
 * into each contender's jar.
 *
 * <p>The marker: whoever holds the lock creates the marker file with CREATE_NEW (O_EXCL)
 * right after acquiring and deletes it right before releasing. If the create fails,
 * another holder is inside: a violation. With N slots (a semaphore with N leases) the
 * marker is N files MARKER.0 .. MARKER.N-1 and a holder that finds all N taken is a
 * violation. Every holder also appends one line to MARKER.history while inside, so the
 * order of holders (and the handoffs between contenders) can be read back. dsctl's side
 * (probes/lock/locktest, contender.go) and the kazoo contender do the same.
 */
final class ContenderSupport {
    private static final PrintStream OUT = System.out;
    private static PrintStream file;
    private static String tool = "contender";
    private static String usage = "";

    private ContenderSupport() {
    }

    /**
     * Parses {@code --key value} pairs; tool and usage are what a bad argument prints
     * (then exit 2). With --out FILE every event is also appended to FILE.
     */
    static Map<String, String> parse(String[] args, String toolName, String usageText) throws IOException {
        tool = toolName;
        usage = usageText;
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String k = args[i];
            if (!k.startsWith("--") || i + 1 >= args.length) {
                usage("unexpected argument " + k);
            }
            m.put(k.substring(2), args[++i]);
        }
        if (m.containsKey("out")) {
            file = new PrintStream(Files.newOutputStream(Path.of(m.get("out")),
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND), true, StandardCharsets.UTF_8);
        }
        return m;
    }

    static String need(Map<String, String> a, String k) {
        String v = a.get(k);
        if (v == null) {
            usage("--" + k + " is required");
        }
        return v;
    }

    static void usage(String why) {
        System.err.println(tool + " contender: " + why);
        System.err.println("usage: " + usage);
        System.exit(2);
    }

    /** One event line on stdout (flushed), and in the --out file when given. */
    static synchronized void emit(String line) {
        OUT.println(line);
        OUT.flush();
        if (file != null) {
            file.println(line);
        }
    }

    /** Sleeps ms, or with a release file until it exists (at most ms): a test decides when. */
    static void hold(long ms, String releaseFile) throws InterruptedException {
        if (releaseFile == null) {
            if (ms > 0) {
                Thread.sleep(ms);
            }
            return;
        }
        long end = System.nanoTime() + ms * 1_000_000L;
        while (System.nanoTime() < end && !Files.exists(Path.of(releaseFile))) {
            Thread.sleep(5);
        }
    }

    /**
     * Enters the critical section as who: takes a free marker slot with CREATE_NEW and
     * appends who to MARKER.history. Returns the slot to pass to leaveMarker, or null
     * when every slot was taken: a violation, already emitted as {@code violation <ms>
     * <who> found the marker taken by: <holders>}.
     */
    static Path enterMarker(String marker, int slots, String who) throws IOException {
        Path taken = null;
        for (int i = 0; i < slots && taken == null; i++) {
            Path p = slot(marker, slots, i);
            try {
                Files.writeString(p, who + "\n", StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                taken = p;
            } catch (FileAlreadyExistsException e) {
                // taken: try the next slot
            }
        }
        if (taken == null) {
            emit("violation " + System.currentTimeMillis() + " " + who + " found the marker taken by: "
                    + markerHolders(marker, slots));
        }
        Files.writeString(Path.of(marker + ".history"), who + "\n",
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        return taken;
    }

    /** Leaves the critical section: deletes the slot enterMarker took (none after a violation). */
    static void leaveMarker(Path slot) throws IOException {
        if (slot != null) {
            Files.deleteIfExists(slot);
        }
    }

    private static Path slot(String marker, int slots, int i) {
        return Path.of(slots == 1 ? marker : marker + "." + i);
    }

    private static String markerHolders(String marker, int slots) {
        List<String> who = new ArrayList<>();
        for (int i = 0; i < slots; i++) {
            try {
                who.add(Files.readString(slot(marker, slots, i)).trim());
            } catch (IOException e) {
                who.add("(gone)");
            }
        }
        return String.join("; ", who);
    }
}
