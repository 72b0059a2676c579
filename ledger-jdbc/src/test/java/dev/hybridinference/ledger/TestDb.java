package dev.hybridinference.ledger;

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * A spend log's tables as a test reads them: plain SQL over a connection of its own, nothing from the code
 * under test. Each test takes a fresh table prefix, so runs against a shared database do not collide.
 *
 * @param url the database's URL
 * @param user the user, or null
 * @param password the password, or null
 * @param prefix the tables' prefix
 */
record TestDb(String url, String user, String password, String prefix) {
    /** A prefix no other run uses: {@code t}, 12 hex digits and an underscore. */
    static String freshPrefix() {
        return "t" + UUID.randomUUID().toString().replace("-", "").substring(0, 12) + "_";
    }

    Connection open() throws SQLException {
        Properties p = new Properties();
        if (user != null) {
            p.setProperty("user", user);
        }
        if (password != null) {
            p.setProperty("password", password);
        }
        return DriverManager.getConnection(url, p);
    }

    String table(String name) {
        return prefix + name;
    }

    long count() throws SQLException {
        return longValue("SELECT COUNT(*) FROM " + table("receipts"));
    }

    BigDecimal costSum() throws SQLException {
        try (Connection c = open();
                Statement s = c.createStatement();
                ResultSet r = s.executeQuery("SELECT COALESCE(SUM(cost), 0) FROM " + table("receipts"))) {
            r.next();
            return r.getBigDecimal(1);
        }
    }

    Set<String> ids() throws SQLException {
        Set<String> ids = new HashSet<>();
        for (List<Object> row : rows("SELECT id FROM " + table("receipts"))) {
            ids.add((String) row.get(0));
        }
        return ids;
    }

    long longValue(String sql) throws SQLException {
        try (Connection c = open();
                Statement s = c.createStatement();
                ResultSet r = s.executeQuery(sql)) {
            r.next();
            return r.getLong(1);
        }
    }

    List<List<Object>> rows(String sql) throws SQLException {
        List<List<Object>> out = new ArrayList<>();
        try (Connection c = open();
                Statement s = c.createStatement();
                ResultSet r = s.executeQuery(sql)) {
            int n = r.getMetaData().getColumnCount();
            while (r.next()) {
                List<Object> row = new ArrayList<>(n);
                for (int i = 1; i <= n; i++) {
                    row.add(r.getObject(i));
                }
                out.add(row);
            }
        }
        return out;
    }

    /** Drops the prefix's tables, those that exist. */
    void drop() throws SQLException {
        try (Connection c = open();
                Statement s = c.createStatement()) {
            for (String t : List.of("receipt_tags", "receipt_attributes", "receipts", "schema_version")) {
                s.execute("DROP TABLE IF EXISTS " + table(t) + " CASCADE");
            }
        }
    }

    /** Waits until {@code condition} holds, failing with {@code what} after 20 s (a guard against hanging). */
    static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(2);
        }
    }
}
