package dev.hybridinference.examples;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Receipt;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Map;

/**
 * Streaming ({@code examples/streaming.yaml}): prints an answer token by token as it arrives, then the
 * receipt, which the stream holds once it has ended: time to first token, total time, tokens and cost.
 */
public final class Streaming {
    private Streaming() {}

    /** What the stream delivered. */
    record Outcome(int chunks, String text, Receipt receipt) {}

    /**
     * Runs the example.
     *
     * @param args ignored
     */
    public static void main(String[] args) {
        run(System.out, System.getenv());
    }

    /** Runs the example with this environment. */
    static Outcome run(PrintStream out, Map<String, String> environment) {
        try (Emulators emulators = new Emulators(out, environment)
                        .cloudRun(
                                "CLOUD_RUN_URL",
                                "GOOGLE_APPLICATION_CREDENTIALS",
                                b -> b.tokenLatency(Duration.ofMillis(20)));
                InferenceClient client =
                        InferenceClients.loader().env(emulators.env()).load(Emulators.config("streaming.yaml"))) {
            ChatRequest request = ChatRequest.builder()
                    .user("Tell a very short story about a lighthouse.")
                    .maxTokens(40)
                    .build();
            int chunks = 0;
            StringBuilder text = new StringBuilder();
            try (ChatStream stream = client.stream(request)) {
                for (ChatChunk chunk : stream) {
                    out.print(chunk.text());
                    out.flush();
                    text.append(chunk.text());
                    chunks++;
                }
                out.println();
                Receipt r = stream.response().receipt();
                out.println(chunks + " chunks; time to first token "
                        + r.timeToFirstToken().map(t -> t.toMillis() + " ms").orElse("unknown") + ", total "
                        + r.totalTime().toMillis() + " ms");
                out.println(r.summary());
                return new Outcome(chunks, text.toString(), r);
            }
        }
    }
}
