package dev.hybridinference.examples;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.localgpu.LocalRuntime;
import java.io.PrintStream;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * A local model ({@code examples/local-model.yaml}): runs a GGUF file in-process with the local runtime, no
 * server and no network. The first argument is the model's path; without one, the example writes the
 * generated demo model, whose weights are <b>random</b>: it runs the real engine, but its answers are
 * nonsense. Where the runtime's native library is not available, it says why and exits normally.
 *
 * <pre>{@code
 * mvn -B -q -pl examples -am -DskipTests package exec:java \
 *     -Dexec.mainClass=dev.hybridinference.examples.LocalModel -Dexec.args=/models/qwen2.5-0.5b-instruct-q4_k_m.gguf
 * }</pre>
 */
public final class LocalModel {
    private LocalModel() {}

    /**
     * Runs the example.
     *
     * @param args optionally, the path of a GGUF model
     */
    public static void main(String[] args) {
        run(System.out, System.getenv(), args);
    }

    /** Runs the example with this environment; the receipt of the streamed answer, empty when not available. */
    static Optional<Receipt> run(PrintStream out, Map<String, String> environment, String... args) {
        if (!LocalRuntime.isAvailable()) {
            out.println("The local runtime is not available on this machine, so there is nothing to run: "
                    + LocalRuntime.unavailabilityCause()
                            .map(Throwable::getMessage)
                            .orElse("no cause given"));
            return Optional.empty();
        }
        Map<String, String> env = new HashMap<>(environment);
        if (args.length > 0) {
            env.put("LOCAL_MODEL_PATH", args[0]);
        }
        try (Emulators emulators = new Emulators(out, env).localModel("LOCAL_MODEL_PATH");
                InferenceClient client =
                        InferenceClients.loader().env(emulators.env()).load(Emulators.config("local-model.yaml"))) {
            out.println("model: " + client.info().models() + " (CPU features " + LocalRuntime.cpuFeatures() + ")");
            ChatRequest request = ChatRequest.builder()
                    .user("Write one sentence about the sea.")
                    .maxTokens(24)
                    .build();
            try (ChatStream stream = client.stream(request)) {
                for (ChatChunk chunk : stream) {
                    out.print(chunk.text());
                    out.flush();
                }
                out.println();
                Receipt r = stream.response().receipt();
                out.println(r.summary());
                out.println("  time to first token "
                        + r.timeToFirstToken().map(t -> t.toMillis() + " ms").orElse("unknown") + ", attributes "
                        + r.attributes());
                return Optional.of(r);
            }
        }
    }
}
