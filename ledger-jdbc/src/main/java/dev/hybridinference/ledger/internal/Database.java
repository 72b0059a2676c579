package dev.hybridinference.ledger.internal;

import dev.hybridinference.core.spi.Secrets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Objects;
import java.util.Properties;
import java.util.regex.Pattern;

/**
 * Where the spend log's tables are: a JDBC URL with its credentials, the dialect, and the prefix of the
 * table names. Opens connections; never puts the password in a message. Immutable and thread-safe.
 * Internal.
 */
public final class Database {
    /** The longest table prefix: PostgreSQL cuts names at 63 characters, and ours add up to 30. */
    public static final int MAX_PREFIX_LENGTH = 32;

    private static final Pattern PREFIX = Pattern.compile("[A-Za-z][A-Za-z0-9_]*");

    private final String url;
    private final String user;
    private final String password;
    private final String prefix;
    private final Dialect dialect;

    /**
     * Settings for a database.
     *
     * @throws SettingException naming {@code url} when no driver on the class path accepts it or it is of
     *     a database other than H2 and PostgreSQL, or {@code tablePrefix} when the prefix is not a plain name
     */
    public Database(String url, String user, String password, String prefix) {
        this.url = Objects.requireNonNull(url, "url");
        this.user = user;
        this.password = password;
        this.prefix = checkPrefix(prefix);
        Secrets.register(password);
        try {
            this.dialect = Dialect.of(url);
        } catch (IllegalArgumentException e) {
            throw new SettingException("url", e.getMessage());
        }
        try {
            DriverManager.getDriver(url);
        } catch (SQLException e) {
            throw new SettingException(
                    "url",
                    "no JDBC driver on the class path accepts " + redactedUrl()
                            + (dialect == Dialect.POSTGRESQL
                                    ? "; add the PostgreSQL driver (org.postgresql:postgresql) to the application"
                                    : "; add the H2 driver (com.h2database:h2) to the application"));
        }
    }

    /**
     * {@code prefix} when it is a plain name that can start SQL identifiers without quoting: a letter, then
     * letters, digits and underscores, at most {@value #MAX_PREFIX_LENGTH} characters.
     *
     * @throws SettingException naming {@code tablePrefix} otherwise
     */
    public static String checkPrefix(String prefix) {
        if (prefix == null || !PREFIX.matcher(prefix).matches() || prefix.length() > MAX_PREFIX_LENGTH) {
            throw new SettingException(
                    "tablePrefix",
                    "expected a letter followed by letters, digits and underscores, at most " + MAX_PREFIX_LENGTH
                            + " characters (such as spend_), got "
                            + (prefix == null ? "nothing" : "\"" + abbreviate(prefix) + "\""));
        }
        return prefix;
    }

    private static String abbreviate(String s) {
        return s.length() > 40 ? s.substring(0, 40) + "..." : s;
    }

    /** A new connection for queries, in auto-commit mode as drivers open them. */
    public Connection open() throws SQLException {
        return open(dialect.driverProperties(false));
    }

    /**
     * A new connection for the writer: besides the connect timeouts, reads that wait on a silent server end
     * (where the driver can bound them), so that a hung server shows as a failure rather than a stuck thread.
     */
    public Connection openForWriting() throws SQLException {
        return open(dialect.driverProperties(true));
    }

    private Connection open(Properties p) throws SQLException {
        if (user != null) {
            p.setProperty("user", user);
        }
        if (password != null) {
            p.setProperty("password", password);
        }
        return DriverManager.getConnection(url, p);
    }

    /** The dialect. */
    public Dialect dialect() {
        return dialect;
    }

    /** The table prefix. */
    public String prefix() {
        return prefix;
    }

    /** The name of one of the spend log's tables: {@code receipts}, {@code receipt_tags}... with the prefix. */
    public String table(String name) {
        return prefix + name;
    }

    /** The URL as it may appear in messages: passwords in it masked. */
    public String redactedUrl() {
        return Secrets.redact(url);
    }

    /** The URL (which may hold a password: never for messages). */
    public String url() {
        return url;
    }

    @Override
    public String toString() {
        return redactedUrl() + " (tables " + prefix + "*)";
    }
}
