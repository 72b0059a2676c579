package dev.hybridinference.examples.demo;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.ToolDefinition;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.localgpu.DemoModels;
import dev.hybridinference.localgpu.LocalRuntime;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The hybrid demo, the README's main command: one {@link HybridClient}, loaded from {@code
 * demo/hybrid-demo.yaml}, in front of an always-on vLLM server of limited capacity, a serverless SageMaker
 * endpoint, a Cloud Run GPU service and an Azure pay-per-token deployment (each an emulator of the platform's
 * real protocol on loopback, cold starts included) and the local runtime on a generated model with random
 * weights. It sends traffic in phases (a quiet period, a burst above the server's capacity, a long-context
 * request, a latency-sensitive request while the serverless members are cold, a request that needs tools),
 * shows a live line per phase, and ends with a table per provider, the route facts, the cost against
 * all-serverless and all-server, and a chart.
 *
 * <p>Options: {@code --short} (a few seconds of traffic), {@code --no-local} (as on a machine without the
 * native library: the router skips the local member and says why), {@code --chart <path>} (default {@code
 * hybrid-demo.png}). Exits with status 1 if any call failed, 2 on a bad option.
 */
public final class HybridDemo {
    /** The system property that turns the local runtime off (read once, when the runtime is first used). */
    static final String NATIVE_DISABLE_PROPERTY = "hybridinference.native.disable";

    private static final String CONFIG = "/demo/hybrid-demo.yaml";
    private static final List<String> QUIET_LOGGERS = List.of(
            "", "dev.hybridinference", "software.amazon", "com.azure", "io.netty", "reactor", "okhttp3", "com.google");

    private HybridDemo() {}

    /**
     * Runs the demo.
     *
     * @param args {@code [--short] [--no-local] [--chart <path>]}
     */
    public static void main(String[] args) {
        Result r = run(Arrays.asList(args), System.out);
        if (r.exitCode() != 0) {
            System.exit(r.exitCode());
        }
    }

    /**
     * What a run produced.
     *
     * @param exitCode 0, 1 when a call failed, 2 on a bad option
     * @param receipts every call's receipt (failed calls' partial receipts included)
     * @param summary the figures printed, or null when nothing ran
     * @param chart the chart written, or null
     * @param failures the calls that failed, in words
     */
    record Result(int exitCode, List<Receipt> receipts, DemoSummary summary, Path chart, List<String> failures) {
        static Result usage() {
            return new Result(2, List.of(), null, null, List.of());
        }
    }

    /** The options, parsed. */
    record Options(boolean shortRun, boolean noLocal, Path chart) {
        static Options parse(List<String> args) {
            boolean shortRun = false;
            boolean noLocal = false;
            Path chart = Path.of("hybrid-demo.png");
            for (int i = 0; i < args.size(); i++) {
                String a = args.get(i);
                switch (a) {
                    case "--short":
                        shortRun = true;
                        break;
                    case "--no-local":
                        noLocal = true;
                        break;
                    case "--chart":
                        if (i + 1 >= args.size()) {
                            throw new IllegalArgumentException("--chart needs a path");
                        }
                        chart = Path.of(args.get(++i));
                        break;
                    default:
                        throw new IllegalArgumentException(
                                "unknown option " + a + " (expected --short, --no-local or --chart <path>)");
                }
            }
            return new Options(shortRun, noLocal, chart);
        }
    }

    /**
     * Timings and traffic sizes: the full run takes about half a minute, the short one a few seconds. Cold
     * starts stay above a second in both, the threshold a held request must pass to count as a cold start.
     */
    record Settings(
            Duration vllmTokenLatency,
            Duration serverlessTokenLatency,
            Duration azureTokenLatency,
            Duration coldStart,
            Duration idle,
            int quietCalls,
            Duration quietGap,
            int burstCalls,
            Duration burstGap,
            int maxTokens) {
        static Settings of(boolean shortRun) {
            return shortRun
                    ? new Settings(ms(6), ms(5), ms(3), ms(1200), ms(1500), 4, ms(60), 16, ms(5), 24)
                    : new Settings(ms(20), ms(15), ms(8), ms(1500), ms(3000), 6, ms(250), 40, ms(50), 48);
        }

        private static Duration ms(long millis) {
            return Duration.ofMillis(millis);
        }
    }

    /**
     * Runs the demo, printing to {@code out}; never exits the JVM.
     *
     * @param args the command-line options
     * @param out where the progress and the summary go
     * @return what the run produced
     */
    static Result run(List<String> args, PrintStream out) {
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            out.println("hybrid demo: " + e.getMessage());
            return Result.usage();
        }
        if (options.noLocal()) {
            // Read once, when the runtime is first used: it must be set before anything touches it.
            System.setProperty(NATIVE_DISABLE_PROPERTY, "true");
            if (LocalRuntime.isAvailable()) {
                out.println("hybrid demo: --no-local needs a fresh JVM: the local runtime is already loaded in this"
                        + " one (or run with -D" + NATIVE_DISABLE_PROPERTY + "=true)");
                return Result.usage();
            }
        }
        System.setProperty("java.awt.headless", "true");
        Map<Logger, Level> levels = quietLogging();
        try {
            return new HybridDemo.Run(options, Settings.of(options.shortRun()), out).call();
        } finally {
            levels.forEach(Logger::setLevel);
        }
    }

    /** Turns the SDK's and the platform SDKs' logging down to errors; returns the levels to restore. */
    private static Map<Logger, Level> quietLogging() {
        // The map keeps the loggers strongly reachable, so java.util.logging cannot forget their levels.
        Map<Logger, Level> saved = new LinkedHashMap<>();
        for (String name : QUIET_LOGGERS) {
            Logger l = Logger.getLogger(name);
            saved.put(l, l.getLevel());
            l.setLevel(Level.SEVERE);
        }
        return saved;
    }

    static String config() {
        try (InputStream in = HybridDemo.class.getResourceAsStream(CONFIG)) {
            if (in == null) {
                throw new IllegalStateException(CONFIG + " is missing from the classpath");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** One run: the backends, the client, the phases and the summary. */
    private static final class Run {
        private final Options options;
        private final Settings settings;
        private final PrintStream out;
        private final boolean terminal = System.console() != null;
        private final int columns = columns();
        private final List<Receipt> receipts = Collections.synchronizedList(new ArrayList<>());
        private final List<String> failures = Collections.synchronizedList(new ArrayList<>());
        private final List<ToolCall> toolCalls = Collections.synchronizedList(new ArrayList<>());
        private final long started = System.nanoTime();

        Run(Options options, Settings settings, PrintStream out) {
            this.options = options;
            this.settings = settings;
            this.out = out;
        }

        Result call() {
            Path dir;
            try {
                dir = Files.createTempDirectory("hybrid-demo");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            out.println("hybrid-inference demo: one HybridClient, five deployments, every call on a receipt"
                    + (options.shortRun() ? " (short run)" : ""));
            out.println();
            CostLedger ledger = new CostLedger();
            try (DemoBackends backends = DemoBackends.start(settings, dir, out);
                    InferenceClient client = InferenceClients.loader()
                            .env(backends.environment())
                            .ledger(ledger)
                            .load(config())) {
                HybridClient hybrid = client.unwrap(HybridClient.class)
                        .orElseThrow(() -> new IllegalStateException("the demo's configuration must have routing"));
                describeLocal(hybrid);
                out.println();

                quiet(hybrid, backends);
                burst(hybrid);
                Receipt longContext = longContext(hybrid);
                Receipt interactive = latencySensitive(hybrid);
                Receipt tools = tools(hybrid, backends);
                out.println();
                explain("long-context", longContext);
                explain("latency-sensitive", interactive);
                explain("tools", tools);
                out.println();

                DemoSummary summary = DemoSummary.of(List.copyOf(receipts), prices(hybrid));
                summary.lines().forEach(out::println);
                printCosts(summary, ledger);
                Path chart = DemoChart.write(List.copyOf(receipts), options.chart());
                out.println("Chart: " + chart.toAbsolutePath().normalize());
                out.printf("Finished in %.1f s.%n", (System.nanoTime() - started) / 1e9);
                if (!failures.isEmpty()) {
                    out.println();
                    out.println(failures.size() + " call(s) failed:");
                    failures.forEach(f -> out.println("  " + f));
                }
                return new Result(
                        failures.isEmpty() ? 0 : 1, List.copyOf(receipts), summary, chart, List.copyOf(failures));
            } finally {
                deleteQuietly(dir);
            }
        }

        private void describeLocal(HybridClient hybrid) {
            Map<String, String> why = new TreeMap<>();
            hybrid.members().forEach((name, m) -> m.client().unavailableReason().ifPresent(r -> why.put(name, r)));
            if (why.isEmpty()) {
                out.println("  local      " + DemoModels.RANDOM_MODEL_NAME
                        + " in-process on the CPU (random weights: its answers are nonsense by design)");
            } else {
                why.forEach(
                        (name, r) -> out.println("  " + pad(name, 10) + " UNAVAILABLE, the router will skip it: " + r));
            }
        }

        // ---- phases ----

        private void quiet(HybridClient client, DemoBackends backends) {
            Phase p = new Phase("quiet", settings.quietCalls());
            for (int i = 0; i < settings.quietCalls(); i++) {
                boolean privateData = i % 2 == 1;
                if (i == 2) {
                    // One server error, to show a fallback: the vLLM provider marks its replica down for a moment.
                    backends.vllm()
                            .failNext(503, "{\"error\":{\"message\":\"engine restarting\",\"code\":503}}", Map.of());
                }
                RequestOptions.Builder o = RequestOptions.builder().tag("feature", privateData ? "notes" : "chat");
                if (privateData) {
                    o.tag("data", "private");
                }
                ChatRequest r = ChatRequest.builder()
                        .system("You are a helpful assistant.")
                        .user(
                                privateData
                                        ? "Summarize this customer's note in one line: the delivery came late and the box was"
                                                + " damaged, please call back."
                                        : "Quiet hour question " + i
                                                + ": what does a cold start cost a serverless endpoint?")
                        .maxTokens(privateData ? 16 : settings.maxTokens() / 2)
                        .options(o.build())
                        .build();
                p.done(send(client, r, "quiet " + i));
                sleep(settings.quietGap());
            }
            p.end();
        }

        private void burst(HybridClient client) {
            int n = settings.burstCalls();
            Phase p = new Phase("burst", n);
            ExecutorService pool = Executors.newFixedThreadPool(n);
            try {
                List<Future<?>> calls = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    ChatRequest r = ChatRequest.builder()
                            .user("Burst request " + i + ": draft a two-line reply to a customer asking about"
                                    + " order status number " + (1000 + i) + ".")
                            .maxTokens(settings.maxTokens())
                            .options(RequestOptions.builder()
                                    .tag("feature", "chat")
                                    .timeout(Duration.ofSeconds(30))
                                    .build())
                            .build();
                    String what = "burst " + i;
                    calls.add(pool.submit(() -> p.done(send(client, r, what))));
                    sleep(settings.burstGap());
                }
                for (Future<?> f : calls) {
                    f.get();
                }
            } catch (Exception e) {
                failures.add("burst: " + e);
            } finally {
                pool.shutdownNow();
            }
            p.end();
        }

        private Receipt longContext(HybridClient client) {
            Phase p = new Phase("long-context", 1);
            // About 9,000 words: longer than the 8k context of the vLLM server and the serverless endpoints.
            StringBuilder contract = new StringBuilder();
            for (int i = 1; contract.length() < 48_000; i++) {
                contract.append("Clause ")
                        .append(i)
                        .append(". The supplier shall deliver the goods described in" + " schedule ")
                        .append(i % 7 + 1)
                        .append(" within thirty days of the order, and the buyer"
                                + " shall pay each invoice within sixty days of receipt. ");
            }
            ChatRequest r = ChatRequest.builder()
                    .system("You review contracts.")
                    .user("List the payment terms in this contract:\n" + contract)
                    .maxTokens(settings.maxTokens())
                    .options(
                            RequestOptions.builder().tag("feature", "contracts").build())
                    .build();
            Receipt receipt = send(client, r, "long-context");
            p.done(receipt);
            p.end();
            return receipt;
        }

        private Receipt latencySensitive(HybridClient client) {
            // Long enough after the burst that the serverless members have scaled to zero, and the router,
            // which learned their idle timeouts and cold starts, predicts them cold.
            sleep(settings.idle().plusMillis(300));
            Phase p = new Phase("latency-sensitive", 5);
            ExecutorService pool = Executors.newFixedThreadPool(4);
            Receipt receipt = null;
            try {
                List<Future<?>> batch = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    ChatRequest r = ChatRequest.builder()
                            .user("Batch job " + i + ": summarize yesterday's support tickets.")
                            .maxTokens(settings.maxTokens() * 2)
                            .options(RequestOptions.builder()
                                    .tag("feature", "batch")
                                    .build())
                            .build();
                    batch.add(pool.submit(() -> p.done(send(client, r, "batch"))));
                }
                // Wait until the batch holds every slot of the server, then ask something a user waits for.
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
                while (client.members().get("vllm").inFlight() < 4 && System.nanoTime() < until) {
                    sleep(Duration.ofMillis(2));
                }
                ChatRequest interactive = ChatRequest.builder()
                        .user("Autocomplete: 'Your order has been...'")
                        .maxTokens(8)
                        .options(RequestOptions.builder()
                                .tag("feature", "autocomplete")
                                .latencyObjective(Duration.ofMillis(800))
                                .build())
                        .build();
                receipt = send(client, interactive, "latency-sensitive");
                p.done(receipt);
                for (Future<?> f : batch) {
                    f.get();
                }
            } catch (Exception e) {
                failures.add("latency-sensitive: " + e);
            } finally {
                pool.shutdownNow();
            }
            p.end();
            return receipt;
        }

        private Receipt tools(HybridClient client, DemoBackends backends) {
            Phase p = new Phase("tools", 1);
            backends.azure().answerNextWithToolCall("get_order_status", "{\"order_id\": \"A-1042\"}");
            ChatRequest r = ChatRequest.builder()
                    .user("Where is my order A-1042?")
                    .addTool(new ToolDefinition(
                            "get_order_status",
                            "Looks up an order's shipping status",
                            "{\"type\":\"object\",\"properties\":{\"order_id\":{\"type\":\"string\"}},"
                                    + "\"required\":[\"order_id\"]}"))
                    .maxTokens(64)
                    .options(RequestOptions.builder().tag("feature", "agent").build())
                    .build();
            Receipt receipt = send(client, r, "tools");
            p.done(receipt);
            p.end();
            return receipt;
        }

        /** Sends one request; records its receipt, or the failure and its partial receipt. */
        private Receipt send(InferenceClient client, ChatRequest r, String what) {
            try {
                ChatResponse response = client.chat(r);
                receipts.add(response.receipt());
                if (!response.toolCalls().isEmpty()) {
                    toolCalls.addAll(response.toolCalls());
                }
                return response.receipt();
            } catch (InferenceException e) {
                failures.add(what + ": " + e.getClass().getSimpleName() + ": " + e.getMessage());
                e.partialReceipt().ifPresent(receipts::add);
                return e.partialReceipt().orElse(null);
            }
        }

        private void explain(String phase, Receipt r) {
            if (r == null) {
                out.println(pad(phase, 18) + " failed");
                return;
            }
            out.println(pad(phase, 18) + " -> " + r.providerId() + " in "
                    + r.totalTime().toMillis() + " ms; route: " + r.route());
            if (phase.equals("tools")) {
                synchronized (toolCalls) {
                    for (ToolCall c : toolCalls) {
                        out.println(pad("", 18) + "    tool call: " + c.name() + " " + c.argumentsJson());
                    }
                }
            }
        }

        private void printCosts(DemoSummary s, CostLedger ledger) {
            out.println();
            out.println("Cost of this traffic: " + s.calls() + " calls, " + (s.inputTokens() + s.outputTokens())
                    + " tokens, over " + s.span().toMillis() + " ms (amounts rounded for display):");
            out.println("  hybrid, as routed (the receipts' sum)      " + DemoSummary.usd(s.totalCost()));
            ledger.capacity("vllm")
                    .ifPresent(c -> out.println("    + the vLLM server's idle time              "
                            + DemoSummary.usd(c.idle()) + "  (billed " + DemoSummary.usd(c.billed()) + " over "
                            + c.uptime().toMillis() + " ms, " + Math.round(c.utilization() * 100) + "% used)"));
            out.println("  all serverless (every call per token)      " + DemoSummary.usd(s.allServerless()));
            out.println("  all server (always-on, sized for the peak)  " + DemoSummary.usd(s.allServer()) + "  ("
                    + s.serversForPeak() + " servers for " + s.peakConcurrency() + " calls at once)");
        }

        // ---- progress ----

        /** A phase's live line: redrawn in place on a terminal, printed once at the end otherwise. */
        private final class Phase {
            private final String name;
            private final int total;
            private final Map<String, Integer> byProvider = new TreeMap<>();
            private final long phaseStart = System.nanoTime();
            private int done;
            private int failed;
            private int spilled;
            private int cold;

            Phase(String name, int total) {
                this.name = name;
                this.total = total;
                draw();
            }

            synchronized void done(Receipt r) {
                done++;
                if (r == null
                        || r.attempts().isEmpty()
                        || r.attempts().get(r.attempts().size() - 1).outcome() != Attempt.Outcome.SUCCEEDED) {
                    failed++;
                }
                if (r != null) {
                    byProvider.merge(r.providerId(), 1, Integer::sum);
                    spilled += r.routeFacts().spilledOver() ? 1 : 0;
                    cold += r.coldStart().observed() ? 1 : 0;
                }
                draw();
            }

            synchronized void end() {
                if (terminal) {
                    out.print("\r" + line() + "\033[K\n");
                } else {
                    out.println(line());
                }
                out.flush();
            }

            private void draw() {
                if (terminal) {
                    // Cut to the terminal's width, so that the line never wraps and "\r" redraws it in place.
                    String line = line();
                    out.print("\r" + line.substring(0, Math.min(line.length(), columns - 1)) + "\033[K");
                    out.flush();
                }
            }

            private String line() {
                int width = 12;
                int filled = total == 0 ? width : done * width / total;
                StringBuilder sb = new StringBuilder();
                sb.append(pad(name, 18))
                        .append('[')
                        .append("#".repeat(filled))
                        .append(".".repeat(width - filled))
                        .append("] ")
                        .append(done)
                        .append('/')
                        .append(total)
                        .append(" calls");
                if (!byProvider.isEmpty()) {
                    sb.append("  ");
                    StringBuilder who = new StringBuilder();
                    byProvider.forEach((k, v) -> who.append(who.length() == 0 ? "" : ", ")
                            .append(k)
                            .append(' ')
                            .append(v));
                    sb.append(who);
                }
                if (spilled > 0) {
                    sb.append("  spilled ").append(spilled);
                }
                if (cold > 0) {
                    sb.append("  cold starts ").append(cold);
                }
                if (failed > 0) {
                    sb.append("  FAILED ").append(failed);
                }
                sb.append(String.format("  %.1f s", (System.nanoTime() - phaseStart) / 1e9));
                return sb.toString();
            }
        }
    }

    /** The prices the comparisons use, read from the loaded configuration through the members' info. */
    static DemoSummary.Prices prices(HybridClient client) {
        Pricing.PerToken serverless = null;
        Pricing.PerInstanceHour server = null;
        for (ClientInfo m : client.info().members()) {
            if (m.id().equals("azure") && m.pricing() instanceof Pricing.PerToken) {
                serverless = (Pricing.PerToken) m.pricing();
            }
            if (m.id().equals("vllm") && m.pricing() instanceof Pricing.PerInstanceHour) {
                server = (Pricing.PerInstanceHour) m.pricing();
            }
        }
        if (serverless == null || server == null) {
            throw new IllegalStateException(
                    "the demo's configuration must price azure per token and vllm per instance hour");
        }
        return new DemoSummary.Prices(
                serverless, server, client.members().get("vllm").options().maxInFlight());
    }

    /** The terminal's width from {@code COLUMNS}, else 100. */
    private static int columns() {
        try {
            return Math.max(
                    20,
                    Integer.parseInt(
                            System.getenv().getOrDefault("COLUMNS", "100").trim()));
        } catch (NumberFormatException e) {
            return 100;
        }
    }

    static String pad(String s, int width) {
        return s.length() >= width ? s : s + " ".repeat(width - s.length());
    }

    static void sleep(Duration d) {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    private static void deleteQuietly(Path dir) {
        try (var files = Files.walk(dir)) {
            files.sorted(Collections.reverseOrder()).forEach(f -> {
                try {
                    Files.deleteIfExists(f);
                } catch (IOException ignored) {
                    // A temporary file left behind is harmless.
                }
            });
        } catch (IOException ignored) {
            // Likewise.
        }
    }
}
