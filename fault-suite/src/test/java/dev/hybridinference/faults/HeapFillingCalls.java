package dev.hybridinference.faults;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.vllm.ReplicaStatus;
import dev.hybridinference.vllm.VllmClient;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The calls of item 3 (unbounded memory), run in a JVM of their own with a small heap: a buffer without a
 * bound fills that heap, and an {@link OutOfMemoryError} there may strike any thread, the test runner's
 * own included, so it must not happen in the test runner's JVM. The test starts this class as a child
 * process with one {@code name=baseUrl} argument per case (each case has its own fault server), and reads
 * one {@code RESULT} line per case back.
 *
 * <p>For each case it loads a configuration as a user would, makes the call, records how it ended, then
 * prints {@code RESET name} and waits for a line on standard input (the test switches that server's faults
 * off meanwhile), makes an ordinary call on the same client, runs a GC and reports the heap in use and the
 * ledger's record count.
 */
public final class HeapFillingCalls {
    private HeapFillingCalls() {}

    /** Runs the cases named by the arguments, in order. */
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String arg : args) {
            int eq = arg.indexOf('=');
            runCase(arg.substring(0, eq), arg.substring(eq + 1), in);
        }
        System.out.flush();
        System.exit(0);
    }

    private static void runCase(String name, String url, BufferedReader in) throws IOException {
        Map<String, String> out = new LinkedHashMap<>();
        out.put("case", name);
        CostLedger ledger = new CostLedger();
        String yaml = name.equals("metrics")
                ? Yaml.single(url, "scrapeInterval", "150ms", "scrapeTimeout", "10s")
                : Yaml.single(url);
        InferenceClient client =
                InferenceClients.loader().env(FaultTestBase.ENV).ledger(ledger).load(yaml);
        int calls = 0;
        long start = System.nanoTime();
        Throwable error = null;
        try {
            switch (name) {
                case "metrics":
                    ReplicaStatus status = awaitWaiting((VllmClient) client, 7.0, Duration.ofSeconds(5));
                    out.put("waiting", String.valueOf(status.waiting()));
                    out.put("status", status.toString());
                    break;
                case "huge-body":
                    calls++;
                    client.chat(ask("answer"));
                    break;
                default:
                    calls++;
                    int toolCalls = stream(client);
                    out.put("toolCalls", String.valueOf(toolCalls));
                    break;
            }
        } catch (Throwable t) {
            error = t;
        }
        out.put(
                "tookMs",
                String.valueOf(Duration.ofNanos(System.nanoTime() - start).toMillis()));
        describe(error, "", out);

        System.out.println("RESET " + name);
        System.out.flush();
        in.readLine();
        Throwable afterError = null;
        try {
            calls++;
            client.chat(ask("still there?"));
        } catch (Throwable t) {
            afterError = t;
        }
        describe(afterError, "after", out);
        try {
            client.close();
        } catch (Throwable t) {
            out.put("closeError", t.toString());
        }
        Runtime rt = Runtime.getRuntime();
        System.gc();
        out.put("heapMb", String.valueOf((rt.totalMemory() - rt.freeMemory()) / (1024 * 1024)));
        out.put("maxMb", String.valueOf(rt.maxMemory() / (1024 * 1024)));
        out.put("calls", String.valueOf(calls));
        out.put("records", String.valueOf(ledger.totals().calls()));
        StringBuilder line = new StringBuilder("RESULT");
        out.forEach((k, v) -> line.append('\t')
                .append(k)
                .append('=')
                .append(v.replace('\t', ' ').replace('\n', ' ')));
        System.out.println(line);
        System.out.flush();
    }

    private static int stream(InferenceClient client) {
        ChatStream s = client.stream(ask("stream"));
        try {
            for (ChatChunk c : s) {
                c.text();
            }
            return s.response().toolCalls().size();
        } catch (RuntimeException | Error e) {
            try {
                s.close();
            } catch (RuntimeException | Error again) {
                if (again != e) {
                    e.addSuppressed(again);
                }
            }
            throw e;
        }
    }

    /**
     * Polls the replica's status until it reports {@code waiting}. While the monitor fills the heap, this
     * thread's own small allocations may fail too; that is the monitor's fault, not this call's, so the
     * poll goes on.
     */
    private static ReplicaStatus awaitWaiting(VllmClient client, double waiting, Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        ReplicaStatus status = null;
        while (System.nanoTime() < deadline) {
            try {
                status = client.replicas().get(0);
                if (status.waiting() == waiting) {
                    return status;
                }
            } catch (OutOfMemoryError e) {
                // the heap is full for a moment; try again
            }
            sleep(50);
        }
        return status != null ? status : client.replicas().get(0);
    }

    private static void describe(Throwable error, String prefix, Map<String, String> out) {
        String p = prefix.isEmpty() ? "" : prefix + ".";
        if (error == null) {
            out.put(p + "outcome", "ok");
            return;
        }
        out.put(p + "outcome", error.getClass().getName());
        out.put(p + "typed", String.valueOf(error instanceof InferenceException));
        out.put(
                p + "receipt",
                String.valueOf(error instanceof InferenceException
                        && ((InferenceException) error).partialReceipt().isPresent()));
        out.put(p + "leak", String.valueOf(Probe.stackTrace(error).contains(FaultTestBase.API_KEY)));
        String m = String.valueOf(error.getMessage());
        out.put(p + "message", m.length() > 200 ? m.substring(0, 200) + "..." : m);
    }

    private static ChatRequest ask(String text) {
        return ChatRequest.builder()
                .user(text)
                .options(
                        RequestOptions.builder().timeout(Duration.ofSeconds(30)).build())
                .build();
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
