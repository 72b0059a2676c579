package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.testkit.FaultServer;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Item 3: what a server sends must never be buffered without a bound. Every fault here sends more than the
 * whole heap of the JVM that receives it, so an unbounded buffer ends in an {@link OutOfMemoryError}
 * (untyped) instead of filling the machine; the fixed client refuses early with {@link
 * MalformedResponseException}, quickly, and the heap is as it was, with the client still usable.
 *
 * <p>The calls run in a child JVM ({@link HeapFillingCalls}, {@value #CHILD_HEAP_MB} MB heap, like this
 * module's surefire argLine): an OutOfMemoryError strikes whichever thread allocates next, and in the test
 * runner's JVM that was once surefire's own command thread, which ended the whole run. The fault servers
 * stay here; the child reports one result per case.
 */
@FaultItem(value = 3, title = "Unbounded memory")
class Item03UnboundedMemoryTest extends FaultTestBase {
    static final int CHILD_HEAP_MB = 256;
    private static final long MORE_THAN_THE_HEAP = CHILD_HEAP_MB * 1024L * 1024 / 4 * 5;
    private static final long QUICKLY_MS = 5000;

    private static final Map<String, FaultServer> SERVERS = new LinkedHashMap<>();
    private static final Map<String, Map<String, String>> RESULTS = new ConcurrentHashMap<>();
    private static String childTrouble = "";

    @BeforeAll
    static void runTheCallsInTheirOwnJvm() throws Exception {
        SERVERS.put("tool-index", FaultServer.start().toolCallIndex(100_000_000L));
        SERVERS.put("endless-line", FaultServer.start().endlessSseLine(MORE_THAN_THE_HEAP));
        SERVERS.put("huge-body", FaultServer.start().hugeBody(MORE_THAN_THE_HEAP));
        SERVERS.put("many-tools", FaultServer.start().manyToolCalls(20_000));
        FaultServer metrics = FaultServer.start().hugeMetrics(MORE_THAN_THE_HEAP);
        SERVERS.put("metrics", metrics);

        // Once the monitor has met the huge /metrics, the server turns ordinary, reporting 7 requests waiting.
        Thread switcher = new Thread(() -> {
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (metrics.count("GET", "/metrics") < 1 && System.nanoTime() < deadline) {
                Probe.sleep(50);
            }
            Probe.sleep(1500);
            metrics.hugeMetrics(0).load(1, 7, 0.5);
        });
        switcher.setDaemon(true);
        switcher.start();

        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-Xmx" + CHILD_HEAP_MB + "m");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(HeapFillingCalls.class.getName());
        SERVERS.forEach((name, server) -> command.add(name + "=" + server.baseUrl()));
        Process child = new ProcessBuilder(command).start();
        ByteArrayOutputStream stderr = new ByteArrayOutputStream();
        Thread drain = new Thread(() -> copy(child.getErrorStream(), stderr));
        drain.setDaemon(true);
        drain.start();
        Thread reader = new Thread(() -> {
            try (BufferedReader out =
                    new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
                OutputStream in = child.getOutputStream();
                String line;
                while ((line = out.readLine()) != null) {
                    if (line.startsWith("RESET ")) {
                        SERVERS.get(line.substring(6).trim()).reset();
                        in.write('\n');
                        in.flush();
                    } else if (line.startsWith("RESULT\t")) {
                        Map<String, String> r = new LinkedHashMap<>();
                        for (String field : line.substring(7).split("\t")) {
                            int eq = field.indexOf('=');
                            r.put(field.substring(0, eq), field.substring(eq + 1));
                        }
                        RESULTS.put(r.get("case"), r);
                    }
                }
            } catch (IOException e) {
                // the child ended
            }
        });
        reader.setDaemon(true);
        reader.start();
        if (!child.waitFor(100, TimeUnit.SECONDS)) {
            child.destroyForcibly();
            childTrouble = "the child JVM did not finish in 100 s; ";
        }
        reader.join(2000);
        drain.join(2000);
        if (child.exitValue() != 0) {
            childTrouble += "the child JVM exited with " + child.exitValue() + "; ";
        }
        String err = stderr.toString(StandardCharsets.UTF_8);
        if (!err.isBlank()) {
            childTrouble += "its stderr ends: " + err.substring(Math.max(0, err.length() - 600));
        }
    }

    @AfterAll
    static void stopServers() {
        SERVERS.values().forEach(FaultServer::close);
        SERVERS.clear();
    }

    @Test
    void aToolCallIndexOfAHundredMillionIsRefusedQuickly() {
        refusedQuickly("tool-index", "a tool-call index of 100000000");
    }

    @Test
    void anEndlessSseLineIsRefused() {
        refusedQuickly("endless-line", "an SSE line longer than the heap, without a newline");
    }

    @Test
    void aHugeBlockingBodyIsRefused() {
        refusedQuickly("huge-body", "a completion body larger than the heap");
    }

    @Test
    void manyToolCallsStayBounded() {
        Map<String, String> r = result("many-tools");
        String outcome = r.get("outcome");
        if (outcome.equals("ok")) {
            assertThat(r.get("toolCalls")).as("tool calls in the answer").isEqualTo("20000");
        } else {
            assertThat(outcome).as("20000 tool calls: " + r).isEqualTo(MalformedResponseException.class.getName());
        }
        assertThat(Long.parseLong(r.get("tookMs"))).as("ms to answer or refuse").isLessThan(QUICKLY_MS);
        intact(r);
    }

    @Test
    void aHugeMetricsBodyDoesNotStopTheMonitor() {
        Map<String, String> r = result("metrics");
        assertThat(SERVERS.get("metrics").count("GET", "/metrics"))
                .as("scrapes of /metrics")
                .isPositive();
        assertThat(r.get("waiting"))
                .as("requests waiting read from /metrics after a huge body (the monitor should keep running): "
                        + r.get("status"))
                .isEqualTo("7.0");
        intact(r);
    }

    private void refusedQuickly(String name, String what) {
        Map<String, String> r = result(name);
        assertThat(r.get("outcome"))
                .as("%s: %s: %s", what, r.get("outcome"), r.get("message"))
                .isEqualTo(MalformedResponseException.class.getName());
        assertThat(Long.parseLong(r.get("tookMs"))).as("ms to refuse").isLessThan(QUICKLY_MS);
        intact(r);
    }

    /** The child's result for a case, booked in the probe; fails when there is none. */
    private Map<String, String> result(String name) {
        Map<String, String> r = RESULTS.get(name);
        probe.external(name, r);
        assertThat(r)
                .as("result of case %s from the child JVM (%s)", name, childTrouble)
                .isNotNull();
        return r;
    }

    /** After the fault, an ordinary call on the same client works and the heap is back to small. */
    private static void intact(Map<String, String> r) {
        assertThat(r.get("after.outcome"))
                .as(
                        "an ordinary call after the fault: %s %s",
                        r.get("after.outcome"), r.getOrDefault("after.message", ""))
                .isEqualTo("ok");
        assertThat(Long.parseLong(r.get("heapMb")))
                .as("MB of heap in use after the fault and a GC, of %s", r.get("maxMb"))
                .isLessThan(Long.parseLong(r.get("maxMb")) / 2);
    }

    private static void copy(InputStream in, ByteArrayOutputStream out) {
        byte[] buf = new byte[8192];
        try {
            int n;
            while ((n = in.read(buf)) > 0) {
                synchronized (out) {
                    out.write(buf, 0, n);
                    if (out.size() > 1 << 20) {
                        out.reset();
                    }
                }
            }
        } catch (IOException e) {
            // the child ended
        }
    }
}
