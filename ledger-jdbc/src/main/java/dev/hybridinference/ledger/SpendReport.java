package dev.hybridinference.ledger;

import dev.hybridinference.core.spi.Secrets;
import java.io.IOException;
import java.io.PrintStream;
import java.io.Writer;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.sql.SQLException;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The spend report from the command line: totals from a spend log's database, by provider, model or tag, in
 * a time window, printed as a table; optionally the receipts exported as a trace CSV for the planner.
 *
 * <pre>
 * java -cp ... dev.hybridinference.ledger.SpendReport --url jdbc:h2:./hybrid-spend \
 *     --from 2026-11-01 --to 2026-12-01 --by tag:tenant
 * </pre>
 *
 * <p>Options: {@code --url} (required), {@code --user}, {@code --password-env} (the name of an environment
 * variable holding the password, so it stays out of the process list), {@code --password}, {@code
 * --table-prefix} ({@code spend_} unless given), {@code --from} and {@code --to} (an ISO-8601 instant such as
 * {@code 2026-11-28T10:00:00Z}, or a date for its midnight UTC; the window includes its start and excludes its
 * end), {@code --by} ({@code provider}, {@code model} or {@code tag:KEY}; {@code provider} unless given), and
 * {@code --trace FILE} to write the window's receipts as a trace CSV as well. Exit status 0 on success, 2 for
 * bad options, 1 when the database fails.
 */
public final class SpendReport {
    private SpendReport() {}

    /** Runs the report and exits with its status. */
    public static void main(String[] args) {
        int status = run(args, System.out, System.err, System.getenv());
        if (status != 0) {
            System.exit(status);
        }
    }

    /**
     * Runs the report.
     *
     * @param args the command line
     * @param out where the table goes
     * @param err where errors and usage go
     * @param env the environment {@code --password-env} reads
     * @return the exit status: 0 on success, 2 for bad options, 1 when the database or the trace file fails
     */
    public static int run(String[] args, PrintStream out, PrintStream err, Map<String, String> env) {
        Options o;
        try {
            o = Options.parse(args, env);
        } catch (IllegalArgumentException e) {
            err.println("spend report: " + Secrets.redact(e.getMessage()));
            err.println(USAGE);
            return 2;
        }
        if (o.help) {
            out.println(USAGE);
            return 0;
        }
        try {
            SpendTotals totals = SpendTotals.builder()
                    .url(o.url)
                    .user(o.user)
                    .password(o.password)
                    .tablePrefix(o.tablePrefix)
                    .build();
            SpendTotals.Window window = new SpendTotals.Window(o.from, o.to);
            print(totals, window, o.by, out);
            if (o.trace != null) {
                long rows;
                try (Writer w = Files.newBufferedWriter(o.trace, StandardCharsets.UTF_8)) {
                    rows = totals.exportTrace(window, w);
                }
                out.println();
                out.println("trace: " + rows + (rows == 1 ? " request" : " requests") + " written to " + o.trace);
            }
            return 0;
        } catch (IllegalArgumentException e) {
            err.println("spend report: " + Secrets.redact(e.getMessage()));
            return 2;
        } catch (SQLException e) {
            err.println("spend report: the database failed: " + Secrets.redact(String.valueOf(e.getMessage())));
            return 1;
        } catch (IOException e) {
            err.println("spend report: cannot write the trace " + o.trace + ": " + e.getMessage());
            return 1;
        }
    }

    private static void print(SpendTotals totals, SpendTotals.Window window, String by, PrintStream out)
            throws SQLException {
        List<String[]> rows = new ArrayList<>();
        String column;
        if (by.equals("provider")) {
            column = "provider";
            totals.byProvider(window).forEach(g -> rows.add(row(g.key(), g.totals())));
        } else if (by.equals("model")) {
            column = "model";
            totals.byModel(window).forEach(g -> rows.add(row(g.key().isEmpty() ? "(none)" : g.key(), g.totals())));
        } else {
            String key = by.substring("tag:".length());
            column = "tag " + key;
            totals.byTag(key, window).forEach(g -> rows.add(row(g.key(), g.totals())));
            SpendTotals.Totals untagged = totals.withoutTag(key, window);
            if (untagged.calls() > 0) {
                rows.add(row("(untagged)", untagged));
            }
        }
        SpendTotals.Totals all = totals.total(window);
        out.println("Spend by " + column + ", " + window);
        out.println();
        String[] header = {column, "calls", "failed", "input_tokens", "output_tokens", "cost_usd"};
        String[] footer = row("TOTAL", all);
        int[] widths = new int[header.length];
        for (String[] r : concat(header, rows, footer)) {
            for (int i = 0; i < r.length; i++) {
                widths[i] = Math.max(widths[i], r[i].length());
            }
        }
        out.println(format(header, widths));
        for (String[] r : rows) {
            out.println(format(r, widths));
        }
        out.println(format(footer, widths));
    }

    private static List<String[]> concat(String[] header, List<String[]> rows, String[] footer) {
        List<String[]> all = new ArrayList<>(rows.size() + 2);
        all.add(header);
        all.addAll(rows);
        all.add(footer);
        return all;
    }

    private static String[] row(String key, SpendTotals.Totals t) {
        return new String[] {
            key,
            Long.toString(t.calls()),
            Long.toString(t.failedCalls()),
            Long.toString(t.inputTokens()),
            Long.toString(t.outputTokens()),
            usd(t.cost())
        };
    }

    /** The exact amount, every digit, no exponent. */
    private static String usd(BigDecimal amount) {
        return SpendTotals.plain(amount).toPlainString();
    }

    /** The first column left-aligned, the numbers right-aligned, two spaces between columns. */
    private static String format(String[] cells, int[] widths) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < cells.length; i++) {
            if (i > 0) {
                sb.append("  ");
            }
            String pad = " ".repeat(widths[i] - cells[i].length());
            if (i == 0) {
                sb.append(cells[i]).append(pad);
            } else {
                sb.append(pad).append(cells[i]);
            }
        }
        return sb.toString().stripTrailing();
    }

    static final String USAGE = String.join(
            "\n",
            "usage: SpendReport --url JDBC_URL [--user USER] [--password-env VAR | --password PASSWORD]",
            "                   [--table-prefix PREFIX] [--from TIME] [--to TIME]",
            "                   [--by provider|model|tag:KEY] [--trace FILE]",
            "  TIME is an ISO-8601 instant (2026-11-28T10:00:00Z) or a date (2026-11-28, midnight UTC);",
            "  the window includes --from and excludes --to.");

    /** The parsed command line. */
    private static final class Options {
        String url;
        String user;
        String password;
        String tablePrefix = JdbcSpendLog.DEFAULT_TABLE_PREFIX;
        Optional<Instant> from = Optional.empty();
        Optional<Instant> to = Optional.empty();
        String by = "provider";
        Path trace;
        boolean help;

        static Options parse(String[] args, Map<String, String> env) {
            Options o = new Options();
            Map<String, String> given = new LinkedHashMap<>();
            for (int i = 0; i < args.length; i++) {
                String name = args[i];
                if (name.equals("--help") || name.equals("-h")) {
                    o.help = true;
                    continue;
                }
                String value;
                int eq = name.indexOf('=');
                if (name.startsWith("--") && eq > 0) {
                    value = name.substring(eq + 1);
                    name = name.substring(0, eq);
                } else {
                    if (i + 1 >= args.length) {
                        throw new IllegalArgumentException(name + " needs a value");
                    }
                    value = args[++i];
                }
                if (given.put(name, value) != null) {
                    throw new IllegalArgumentException(name + " is given twice");
                }
            }
            if (o.help) {
                return o;
            }
            for (Map.Entry<String, String> e : given.entrySet()) {
                String v = e.getValue();
                switch (e.getKey()) {
                    case "--url":
                        o.url = v;
                        break;
                    case "--user":
                        o.user = v;
                        break;
                    case "--password":
                        o.password = v;
                        Secrets.register(v);
                        break;
                    case "--password-env":
                        o.password = env.get(v);
                        if (o.password == null) {
                            throw new IllegalArgumentException(
                                    "--password-env names " + v + ", which is not set in the environment");
                        }
                        Secrets.register(o.password);
                        break;
                    case "--table-prefix":
                        o.tablePrefix = v;
                        break;
                    case "--from":
                        o.from = Optional.of(time("--from", v));
                        break;
                    case "--to":
                        o.to = Optional.of(time("--to", v));
                        break;
                    case "--by":
                        if (!v.equals("provider") && !v.equals("model") && !(v.startsWith("tag:") && v.length() > 4)) {
                            throw new IllegalArgumentException(
                                    "--by expects provider, model or tag:KEY (tag:tenant), got \"" + v + "\"");
                        }
                        o.by = v;
                        break;
                    case "--trace":
                        try {
                            o.trace = Path.of(v);
                        } catch (InvalidPathException ex) {
                            throw new IllegalArgumentException("--trace expects a file name, got \"" + v + "\"");
                        }
                        break;
                    default:
                        throw new IllegalArgumentException("unknown option " + e.getKey());
                }
            }
            if (given.containsKey("--password") && given.containsKey("--password-env")) {
                throw new IllegalArgumentException("give --password or --password-env, not both");
            }
            if (o.url == null || o.url.isBlank()) {
                throw new IllegalArgumentException(
                        "--url is required: the spend log's JDBC URL, such as " + JdbcSpendLog.DEFAULT_URL);
            }
            if (o.from.isPresent() && o.to.isPresent() && o.to.get().isBefore(o.from.get())) {
                throw new IllegalArgumentException("--to (" + o.to.get() + ") is before --from (" + o.from.get() + ")");
            }
            return o;
        }

        private static Instant time(String option, String v) {
            try {
                return v.length() == 10
                        ? LocalDate.parse(v).atStartOfDay(ZoneOffset.UTC).toInstant()
                        : Instant.parse(v);
            } catch (DateTimeParseException e) {
                throw new IllegalArgumentException(option
                        + " expects an ISO-8601 instant such as 2026-11-28T10:00:00Z or a date such as 2026-11-28, got \""
                        + v + "\"");
            }
        }
    }
}
