package dev.hybridinference.ledger.internal;

import java.util.Properties;

/**
 * What differs between the databases the spend log supports: how a row is inserted only when absent, where
 * the migrations are, and the driver settings that keep a dead server from holding a thread forever.
 * Internal.
 */
public enum Dialect {
    /** H2, embedded (a file next to the application) or in server mode. */
    H2("h2", "jdbc:h2:"),
    /** PostgreSQL. */
    POSTGRESQL("postgresql", "jdbc:postgresql:");

    private final String folder;
    private final String urlPrefix;

    Dialect(String folder, String urlPrefix) {
        this.folder = folder;
        this.urlPrefix = urlPrefix;
    }

    /**
     * The dialect of a JDBC URL.
     *
     * @throws IllegalArgumentException for a database other than H2 and PostgreSQL
     */
    public static Dialect of(String url) {
        for (Dialect d : values()) {
            if (url.regionMatches(true, 0, d.urlPrefix, 0, d.urlPrefix.length())) {
                return d;
            }
        }
        throw new IllegalArgumentException(
                "expected a JDBC URL of H2 (jdbc:h2:...) or PostgreSQL (jdbc:postgresql://...), got one starting \""
                        + url.substring(0, Math.min(url.length(), 16)) + "\"");
    }

    /** The resource folder of this dialect's migration scripts. */
    public String migrationFolder() {
        return "/dev/hybridinference/ledger/migrations/" + folder + "/";
    }

    /**
     * Driver properties besides the user and password. PostgreSQL's driver waits on a silent server without
     * end unless told otherwise, which would hold the writer on a dead connection; the writer's reads give up
     * after a minute (a batch of inserts takes milliseconds), while queries, which may scan a long history,
     * wait as long as they take. These are defaults: the same settings in the URL win.
     *
     * @param writer whether the connection is the writer's
     */
    public Properties driverProperties(boolean writer) {
        Properties p = new Properties();
        if (this == POSTGRESQL) {
            p.setProperty("connectTimeout", "10");
            p.setProperty("loginTimeout", "10");
            p.setProperty("tcpKeepAlive", "true");
            p.setProperty("ApplicationName", "hybrid-inference spend log");
            if (writer) {
                p.setProperty("socketTimeout", "60");
            }
        }
        return p;
    }

    /** An insert of one receipt row that does nothing when a row with its id is there already. */
    public String insertReceipt(String table, String columns, int count) {
        String marks = marks(count);
        if (this == POSTGRESQL) {
            return "INSERT INTO " + table + " (" + columns + ") VALUES (" + marks + ") ON CONFLICT (id) DO NOTHING";
        }
        // H2 has no ON CONFLICT; MERGE ... WHEN NOT MATCHED inserts only what is absent. The id is bound
        // twice: once to match, once to insert.
        return "MERGE INTO " + table + " t USING (SELECT CAST(? AS VARCHAR(200)) AS id) s ON t.id = s.id"
                + " WHEN NOT MATCHED THEN INSERT (" + columns + ") VALUES (" + marks + ")";
    }

    /** Whether {@link #insertReceipt} binds the id once more, before the columns. */
    public boolean bindsIdTwice() {
        return this == H2;
    }

    /** An insert of one child row (a tag or an attribute) that does nothing when its key is there already. */
    public String insertChild(String table, String keyColumn, String valueColumn) {
        if (this == POSTGRESQL) {
            return "INSERT INTO " + table + " (receipt_id, " + keyColumn + ", " + valueColumn
                    + ") VALUES (?, ?, ?) ON CONFLICT DO NOTHING";
        }
        return "MERGE INTO " + table
                + " t USING (SELECT CAST(? AS VARCHAR(200)) AS receipt_id, CAST(? AS VARCHAR) AS k,"
                + " CAST(? AS VARCHAR) AS v) s ON t.receipt_id = s.receipt_id AND t." + keyColumn + " = s.k"
                + " WHEN NOT MATCHED THEN INSERT (receipt_id, " + keyColumn + ", " + valueColumn
                + ") VALUES (s.receipt_id, s.k, s.v)";
    }

    private static String marks(int count) {
        StringBuilder sb = new StringBuilder(count * 3);
        for (int i = 0; i < count; i++) {
            sb.append(i == 0 ? "?" : ", ?");
        }
        return sb.toString();
    }
}
