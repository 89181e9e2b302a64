package dsctl.interop;

import static dsctl.interop.ContenderSupport.emit;
import static dsctl.interop.ContenderSupport.enterMarker;
import static dsctl.interop.ContenderSupport.hold;
import static dsctl.interop.ContenderSupport.leaveMarker;
import static dsctl.interop.ContenderSupport.need;
import static dsctl.interop.ContenderSupport.parse;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.logging.Logger;

import javax.sql.DataSource;

import net.javacrumbs.shedlock.core.LockConfiguration;
import net.javacrumbs.shedlock.core.SimpleLock;
import net.javacrumbs.shedlock.provider.jdbc.JdbcLockProvider;

/**
 * A contender for dsctl's SQL lock interoperability tests: ShedLock's plain JDBC
 * provider (JdbcLockProvider over a DataSource, no Spring), as a Spring service scheduled
 * with ShedLock uses it, takes, extends and releases one lock in a loop.
 *
 * <p>ShedLock never waits: lock() returns empty while another holder's lock_until is in
 * the future, so this polls every --poll-ms until --wait-ms. Exclusion is proven with
 * the same critical-section marker as the ZooKeeper contenders (ContenderSupport in
 * scripts/interop/common): the holder creates MARKER with CREATE_NEW (O_EXCL) after
 * acquiring and deletes it before unlocking; a failed create is a violation. Every
 * holder appends a line to MARKER.history.
 *
 * <p>It creates ShedLock's standard table when it is missing (the DDL from ShedLock's
 * documentation for MySQL/MariaDB or PostgreSQL).
 *
 * <p>Output, one line per event on stdout (flushed) and appended to --out: {@code ready
 * <ms> <product>}, {@code enter <ms> <name> <side> <locked_by>}, {@code extended <ms>},
 * {@code extend-failed <ms>}, {@code exit <ms> <name>}, {@code unlock-skipped <ms>}, {@code violation <ms> <what>}, {@code
 * timeout <ms>}, {@code done acquired=N violations=V}. Exit status: 0 no violation, 3
 * violations, 4 an acquire timed out, 2 bad arguments, 1 anything else.
 */
public final class ShedLockContender {
    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        Map<String, String> a = parse(args, "shedlock", "java -jar shedlock-contender.jar --jdbc-url jdbc:mariadb://HOST:PORT/DB|jdbc:postgresql://HOST:PORT/DB"
                + " [--user U] --name LOCK --marker FILE [--table shedlock] [--iterations N] [--hold-ms MS] [--gap-ms MS]"
                + " [--wait-ms MS] [--poll-ms MS] [--lock-at-most-ms MS] [--extend yes|no] [--release-file FILE] [--side NAME]"
                + " [--out FILE]"
                + " (password: env SHEDLOCK_JDBC_PASSWORD)");
        String url = need(a, "jdbc-url");
        String user = a.getOrDefault("user", "");
        // The password comes from the environment, never from argv.
        String password = System.getenv().getOrDefault("SHEDLOCK_JDBC_PASSWORD", "");
        String table = a.getOrDefault("table", "shedlock");
        String name = need(a, "name");
        String marker = need(a, "marker");
        String side = a.getOrDefault("side", "shedlock");
        int iterations = Integer.parseInt(a.getOrDefault("iterations", "10"));
        long holdMs = Long.parseLong(a.getOrDefault("hold-ms", "20"));
        long gapMs = Long.parseLong(a.getOrDefault("gap-ms", "20"));
        long waitMs = Long.parseLong(a.getOrDefault("wait-ms", "30000"));
        long pollMs = Long.parseLong(a.getOrDefault("poll-ms", "5"));
        long atMostMs = Long.parseLong(a.getOrDefault("lock-at-most-ms", "10000"));
        String releaseFile = a.get("release-file");
        boolean extend = !"no".equals(a.getOrDefault("extend", "yes"));

        DataSource ds = new DriverDataSource(url, user, password);
        String product = createTable(ds, table);
        JdbcLockProvider provider = new JdbcLockProvider(ds, table);
        emit("ready " + System.currentTimeMillis() + " " + product);

        int acquired = 0;
        int violations = 0;
        Duration atMost = Duration.ofMillis(atMostMs);
        for (int i = 0; i < iterations; i++) {
            long deadline = System.nanoTime() + waitMs * 1_000_000L;
            Optional<SimpleLock> lock;
            while ((lock = provider.lock(new LockConfiguration(Instant.now(), name, atMost, Duration.ZERO))).isEmpty()) {
                if (System.nanoTime() > deadline) {
                    emit("timeout " + System.currentTimeMillis());
                    emit("done acquired=" + acquired + " violations=" + violations);
                    System.exit(4);
                }
                Thread.sleep(pollMs);
            }
            SimpleLock held = lock.get();
            acquired++;
            String who = side + " " + lockedBy(ds, table, name);
            emit("enter " + System.currentTimeMillis() + " " + name + " " + who);
            Path mark = enterMarker(marker, 1, who);
            if (mark == null) {
                violations++;
            }
            hold(holdMs / 2, releaseFile);
            // Extend, as a long task does (ShedLock's SimpleLock.extend). ShedLock
            // invalidates the lock object on every extend: after a failed one it cannot
            // be unlocked (unlock throws), so the task ends without unlocking, as
            // ShedLock's LockingTaskExecutor would.
            boolean valid = true;
            if (extend) {
                Optional<SimpleLock> extended = held.extend(atMost, Duration.ZERO);
                if (extended.isPresent()) {
                    held = extended.get();
                    emit("extended " + System.currentTimeMillis());
                } else {
                    valid = false;
                    emit("extend-failed " + System.currentTimeMillis());
                }
            }
            hold(holdMs - holdMs / 2, releaseFile);
            leaveMarker(mark);
            emit("exit " + System.currentTimeMillis() + " " + name);
            if (valid) {
                held.unlock();
            } else {
                emit("unlock-skipped " + System.currentTimeMillis() + " (the failed extend invalidated the lock)");
            }
            if (gapMs > 0) {
                Thread.sleep(gapMs);
            }
        }
        emit("done acquired=" + acquired + " violations=" + violations);
        System.exit(violations > 0 ? 3 : 0);
    }

    /** ShedLock's standard table, created when missing; returns the database product. */
    static String createTable(DataSource ds, String table) throws SQLException {
        try (Connection c = ds.getConnection()) {
            String product = c.getMetaData().getDatabaseProductName();
            boolean pg = product.toLowerCase().contains("postgres");
            String ddl = pg
                    ? "CREATE TABLE IF NOT EXISTS " + table + " (name VARCHAR(64) NOT NULL, lock_until TIMESTAMP NOT NULL,"
                            + " locked_at TIMESTAMP NOT NULL, locked_by VARCHAR(255) NOT NULL, PRIMARY KEY (name))"
                    : "CREATE TABLE IF NOT EXISTS " + table + " (name VARCHAR(64) NOT NULL, lock_until TIMESTAMP(3) NOT NULL,"
                            + " locked_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), locked_by VARCHAR(255) NOT NULL,"
                            + " PRIMARY KEY (name))";
            try (Statement s = c.createStatement()) {
                s.execute(ddl);
            } catch (SQLException e) {
                // Two contenders creating it at once (PostgreSQL's IF NOT EXISTS can still
                // collide): fine if it exists now.
                try (Statement s = c.createStatement()) {
                    s.executeQuery("SELECT 1 FROM " + table + " WHERE 1 = 0").close();
                } catch (SQLException again) {
                    throw e;
                }
            }
            return pg ? "postgresql" : "mysql";
        }
    }

    static String lockedBy(DataSource ds, String table, String name) {
        try (Connection c = ds.getConnection();
             var ps = c.prepareStatement("SELECT locked_by FROM " + table + " WHERE name = ?")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getString(1).replace(' ', '_') : "?";
            }
        } catch (SQLException e) {
            return "?";
        }
    }

    /** A DataSource over DriverManager: a new connection each time, as ShedLock expects of a pool. */
    static final class DriverDataSource implements DataSource {
        private final String url;
        private final Properties props = new Properties();

        DriverDataSource(String url, String user, String password) {
            this.url = url;
            if (!user.isEmpty()) {
                props.setProperty("user", user);
            }
            if (!password.isEmpty()) {
                props.setProperty("password", password);
            }
        }

        public Connection getConnection() throws SQLException {
            return DriverManager.getConnection(url, props);
        }

        public Connection getConnection(String u, String p) throws SQLException {
            return DriverManager.getConnection(url, u, p);
        }

        public PrintWriter getLogWriter() {
            return null;
        }

        public void setLogWriter(PrintWriter w) {
        }

        public void setLoginTimeout(int s) {
            DriverManager.setLoginTimeout(s);
        }

        public int getLoginTimeout() {
            return DriverManager.getLoginTimeout();
        }

        public Logger getParentLogger() throws SQLFeatureNotSupportedException {
            throw new SQLFeatureNotSupportedException();
        }

        public <T> T unwrap(Class<T> iface) throws SQLException {
            throw new SQLException("not a wrapper");
        }

        public boolean isWrapperFor(Class<?> iface) {
            return false;
        }
    }
}
