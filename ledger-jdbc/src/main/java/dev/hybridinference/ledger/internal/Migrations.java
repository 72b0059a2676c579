package dev.hybridinference.ledger.internal;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Brings the spend log's schema up to date: the scripts of a dialect ({@code V1__receipts.sql}, ... listed
 * in {@code migrations.list} beside them) are applied in order, each recorded in a {@code schema_version}
 * table with its checksum, so a database is migrated once however many instances start against it.
 *
 * <p>How concurrent starts are made safe depends on the database. PostgreSQL runs DDL in transactions, so
 * the whole migration runs in one, under a transaction-scoped advisory lock keyed by the table prefix: the
 * second instance waits, then finds the versions applied. H2 commits every DDL statement on its own and has
 * no advisory locks, so there instances in one process take turns on a lock of this class, and the scripts
 * are written to be harmless when run twice (every statement says {@code IF NOT EXISTS}) for processes that
 * share a server-mode database. Internal.
 */
public final class Migrations {
    private static final Pattern NAME = Pattern.compile("V(\\d+)__([A-Za-z0-9_]+)\\.sql");
    private static final Map<String, Object> IN_PROCESS = new ConcurrentHashMap<>();

    private Migrations() {}

    /**
     * A migration script.
     *
     * @param version its version, from 1
     * @param description its name after the version
     * @param text the script as shipped, with {@code ${prefix}} where table names start
     * @param checksum the SHA-256 of the text, in hex
     */
    public record Script(int version, String description, String text, String checksum) {
        /** The statements of the script with the prefix in place, comments and blank lines left out. */
        List<String> statements(String prefix) {
            StringBuilder sql = new StringBuilder();
            for (String line : text.split("\n")) {
                String l = line.strip();
                if (!l.isEmpty() && !l.startsWith("--")) {
                    sql.append(line).append('\n');
                }
            }
            List<String> out = new ArrayList<>();
            for (String s : sql.toString().replace("${prefix}", prefix).split(";")) {
                if (!s.isBlank()) {
                    out.add(s.strip());
                }
            }
            return out;
        }
    }

    /** The scripts of a dialect, in order of version. */
    public static List<Script> scripts(Dialect dialect) {
        List<Script> out = new ArrayList<>();
        for (String name : lines(dialect.migrationFolder() + "migrations.list")) {
            Matcher m = NAME.matcher(name);
            if (!m.matches()) {
                throw new IllegalStateException("migration " + name + " is not named V<version>__<name>.sql");
            }
            int version = Integer.parseInt(m.group(1));
            if (version != out.size() + 1) {
                throw new IllegalStateException("migration " + name + " should have version " + (out.size() + 1));
            }
            String text = String.join("\n", lines(dialect.migrationFolder() + name));
            out.add(new Script(version, m.group(2), text, sha256(text)));
        }
        return out;
    }

    /**
     * Applies the scripts the database lacks.
     *
     * @param connection a connection, in auto-commit mode; left in auto-commit mode
     * @return the versions this call applied (empty when another instance had applied them all)
     * @throws SQLException when the database fails
     * @throws IllegalStateException when a script applied before differs from the one shipped now, or the
     *     database is at a version this code does not know
     */
    public static List<Integer> migrate(Connection connection, Database db) throws SQLException {
        List<Script> scripts = scripts(db.dialect());
        if (db.dialect() == Dialect.POSTGRESQL) {
            return migrateInTransaction(connection, db, scripts);
        }
        // One lock per database and prefix in this process (H2 has no advisory locks).
        Object lock = IN_PROCESS.computeIfAbsent(db.url() + "\n" + db.prefix(), k -> new Object());
        synchronized (lock) {
            return migrateStatementByStatement(connection, db, scripts);
        }
    }

    private static List<Integer> migrateInTransaction(Connection c, Database db, List<Script> scripts)
            throws SQLException {
        c.setAutoCommit(false);
        try {
            try (PreparedStatement lock = c.prepareStatement("SELECT pg_advisory_xact_lock(?)")) {
                lock.setLong(1, lockKey(db.prefix()));
                lock.execute();
            }
            createVersionTable(c, db);
            List<Integer> applied = apply(c, db, scripts, readVersions(c, db, scripts));
            c.commit();
            return applied;
        } catch (SQLException | RuntimeException e) {
            try {
                c.rollback();
            } catch (SQLException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        } finally {
            restoreAutoCommit(c);
        }
    }

    private static List<Integer> migrateStatementByStatement(Connection c, Database db, List<Script> scripts)
            throws SQLException {
        createVersionTable(c, db);
        c.setAutoCommit(false);
        try {
            List<Integer> applied = apply(c, db, scripts, readVersions(c, db, scripts));
            c.commit();
            return applied;
        } catch (SQLException | RuntimeException e) {
            try {
                c.rollback();
            } catch (SQLException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        } finally {
            restoreAutoCommit(c);
        }
    }

    /**
     * Creates the version table unless it is there. PostgreSQL's {@code IF NOT EXISTS} races with a
     * concurrent creation (both see no table, one fails on the catalog's unique index), which is why it runs
     * under the advisory lock there; H2 creates tables one at a time.
     */
    private static void createVersionTable(Connection c, Database db) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS " + db.table("schema_version")
                    + " (version INTEGER NOT NULL PRIMARY KEY, description VARCHAR(200) NOT NULL,"
                    + " checksum VARCHAR(64) NOT NULL, applied_at TIMESTAMP WITH TIME ZONE NOT NULL)");
        }
    }

    /** The versions recorded, with their checksums, checked against the scripts shipped. */
    private static Map<Integer, String> readVersions(Connection c, Database db, List<Script> scripts)
            throws SQLException {
        Map<Integer, String> versions = new HashMap<>();
        try (Statement s = c.createStatement();
                ResultSet r = s.executeQuery("SELECT version, checksum FROM " + db.table("schema_version"))) {
            while (r.next()) {
                versions.put(r.getInt(1), r.getString(2));
            }
        }
        for (Map.Entry<Integer, String> v : versions.entrySet()) {
            int version = v.getKey();
            if (version < 1 || version > scripts.size()) {
                throw new IllegalStateException("the spend log tables " + db.prefix() + "* are at schema version "
                        + version + ", which this version of the library does not know (it knows 1 to "
                        + scripts.size() + "); use a newer library or another tablePrefix");
            }
            Script script = scripts.get(version - 1);
            if (!script.checksum().equals(v.getValue())) {
                throw new IllegalStateException("the spend log tables " + db.prefix() + "* were migrated by a script "
                        + "V" + version + "__" + script.description() + " that differs from the one shipped now;"
                        + " the schema cannot be trusted: use another tablePrefix, or restore the tables");
            }
        }
        return versions;
    }

    private static List<Integer> apply(Connection c, Database db, List<Script> scripts, Map<Integer, String> done)
            throws SQLException {
        List<Integer> applied = new ArrayList<>();
        for (Script script : scripts) {
            if (done.containsKey(script.version())) {
                continue;
            }
            try (Statement s = c.createStatement()) {
                for (String sql : script.statements(db.prefix())) {
                    s.execute(sql);
                }
            }
            if (recordVersion(c, db, script)) {
                applied.add(script.version());
            }
        }
        return applied;
    }

    /** Back to auto-commit; a broken connection is the caller's to discard, and its failure is already thrown. */
    private static void restoreAutoCommit(Connection c) {
        try {
            c.setAutoCommit(true);
        } catch (SQLException e) {
            // the connection is broken; the exception that broke it is on its way up
        }
    }

    /** Records a version unless it is recorded already; whether this call recorded it. */
    private static boolean recordVersion(Connection c, Database db, Script script) throws SQLException {
        String table = db.table("schema_version");
        String sql = db.dialect() == Dialect.POSTGRESQL
                ? "INSERT INTO " + table + " (version, description, checksum, applied_at) VALUES (?, ?, ?, ?)"
                        + " ON CONFLICT (version) DO NOTHING"
                : "MERGE INTO " + table + " t USING (SELECT CAST(? AS INTEGER) AS version) s ON t.version = s.version"
                        + " WHEN NOT MATCHED THEN INSERT (version, description, checksum, applied_at)"
                        + " VALUES (s.version, ?, ?, ?)";
        try (PreparedStatement p = c.prepareStatement(sql)) {
            p.setInt(1, script.version());
            p.setString(2, script.description());
            p.setString(3, script.checksum());
            p.setObject(4, OffsetDateTime.now(ZoneOffset.UTC));
            return p.executeUpdate() == 1;
        }
    }

    /** The advisory lock's key: 64 bits of a hash of the prefix, the same in every process. */
    static long lockKey(String prefix) {
        byte[] hash = sha256Bytes("dev.hybridinference.ledger:" + prefix.toLowerCase(java.util.Locale.ROOT));
        return ByteBuffer.wrap(hash).getLong();
    }

    private static String sha256(String text) {
        return HexFormat.of().formatHex(sha256Bytes(text));
    }

    private static byte[] sha256Bytes(String text) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    /** The lines of a resource, without blank lines and {@code #} comments in list files. */
    private static List<String> lines(String resource) {
        InputStream in = Migrations.class.getResourceAsStream(resource);
        if (in == null) {
            throw new IllegalStateException("the resource " + resource + " is missing from the ledger-jdbc jar");
        }
        boolean list = resource.endsWith(".list");
        List<String> out = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (list && (line.isBlank() || line.strip().startsWith("#"))) {
                    continue;
                }
                out.add(list ? line.strip() : line);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + resource, e);
        }
        return out;
    }
}
