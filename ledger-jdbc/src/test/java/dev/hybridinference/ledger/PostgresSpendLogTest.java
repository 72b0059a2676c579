package dev.hybridinference.ledger;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Properties;
import org.junit.jupiter.api.BeforeAll;

/**
 * The spend log on the PostgreSQL server of the machine (127.0.0.1:5432, database {@code test}, user {@code
 * postgres}); skipped, with the reason, when it cannot be reached. Tables carry a prefix of their own per test
 * and are dropped afterwards.
 */
class PostgresSpendLogTest extends SpendLogContract {
    static final String URL = "jdbc:postgresql://127.0.0.1:5432/test";
    static final String USER = "postgres";

    @BeforeAll
    static void reachable() {
        assumeTrue(reason() == null, PostgresSpendLogTest::reason);
    }

    /** Why PostgreSQL cannot be used, or null when it can. */
    static String reason() {
        Properties p = new Properties();
        p.setProperty("user", USER);
        p.setProperty("connectTimeout", "3");
        p.setProperty("loginTimeout", "3");
        try (Connection c = DriverManager.getConnection(URL, p)) {
            return null;
        } catch (SQLException e) {
            return "PostgreSQL is not reachable at " + URL + " as " + USER + ": " + e.getMessage();
        }
    }

    @Override
    String url() {
        return URL;
    }

    @Override
    String user() {
        return USER;
    }

    @Override
    InetSocketAddress server() {
        return new InetSocketAddress(InetAddress.getLoopbackAddress(), 5432);
    }

    @Override
    String urlThrough(int port) {
        return "jdbc:postgresql://127.0.0.1:" + port + "/test";
    }

    @Override
    String serverUrl() {
        return URL;
    }
}
