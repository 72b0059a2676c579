package dev.hybridinference.examples;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Model tiering ({@code examples/model-tiering.yaml}): a small model on an always-on server answers by
 * default; a request tagged {@code feature=legal} and a long prompt go to a large model billed per token. The
 * rules live in the configuration; the application only tags its requests.
 */
public final class ModelTiering {
    private ModelTiering() {}

    /**
     * Runs the example.
     *
     * @param args ignored
     */
    public static void main(String[] args) {
        run(System.out, System.getenv());
    }

    /** Runs the example with this environment; returns the receipts of its three calls, in order. */
    static List<Receipt> run(PrintStream out, Map<String, String> environment) {
        List<Receipt> receipts = new ArrayList<>();
        try (Emulators emulators = new Emulators(out, environment)
                        .vllm("VLLM_SMALL_URL", b -> b.model("llama-3.1-8b-instruct"))
                        .azure("AZURE_ENDPOINT", "AZURE_API_KEY", "AZURE_CA_CERTIFICATES", "gpt-4o");
                InferenceClient client =
                        InferenceClients.loader().env(emulators.env()).load(Emulators.config("model-tiering.yaml"))) {
            ChatRequest quick = ChatRequest.builder()
                    .user("What is the capital of Portugal?")
                    .maxTokens(16)
                    .build();
            ChatRequest legal = ChatRequest.builder()
                    .user("Is this indemnity clause enforceable: 'Supplier shall hold Customer harmless ...'?")
                    .maxTokens(64)
                    .options(RequestOptions.builder().tag("feature", "legal").build())
                    .build();
            ChatRequest longDocument = ChatRequest.builder()
                    .user("Summarise this report:\n" + "Quarterly revenue grew in every region. ".repeat(250))
                    .maxTokens(64)
                    .build();
            for (ChatRequest request : List.of(quick, legal, longDocument)) {
                Receipt r = client.chat(request).receipt();
                out.println("tier " + r.routeFacts().tier().orElse("?") + " -> " + r.providerId() + " (" + r.model()
                        + "): " + r.route());
                receipts.add(r);
            }
        }
        return receipts;
    }
}
