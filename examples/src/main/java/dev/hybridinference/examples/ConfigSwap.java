package dev.hybridinference.examples;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.localgpu.LocalRuntime;
import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Config swap: the same application code against vLLM, SageMaker, Azure, Cloud Run and a local model, one
 * configuration file each ({@code examples/config-swap/*.yaml}); only the file changes. Prints each call's
 * receipt in one line: where it ran, how long it took, the tokens and the cost.
 */
public final class ConfigSwap {
    /** One configuration per platform, in {@code src/main/resources/examples/config-swap/}. */
    static final List<String> PLATFORMS = List.of("vllm", "sagemaker", "azure", "cloudrun", "local");

    private ConfigSwap() {}

    /**
     * Runs the example.
     *
     * @param args ignored
     */
    public static void main(String[] args) {
        run(System.out, System.getenv());
    }

    /** Runs the example with this environment; returns each platform's receipt (the local one when available). */
    static Map<String, Receipt> run(PrintStream out, Map<String, String> environment) {
        Map<String, Receipt> receipts = new LinkedHashMap<>();
        try (Emulators emulators = new Emulators(out, environment)) {
            emulators
                    .vllm("VLLM_BASE_URL", b -> b.model("llama-3.1-8b-instruct"))
                    .sageMaker("SAGEMAKER_ENDPOINT", "SAGEMAKER_ENDPOINT_URL", b -> b)
                    .azure("AZURE_ENDPOINT", "AZURE_API_KEY", "AZURE_CA_CERTIFICATES", "gpt-4o-mini")
                    .cloudRun("CLOUD_RUN_URL", "GOOGLE_APPLICATION_CREDENTIALS", b -> b);
            if (LocalRuntime.isAvailable()) {
                emulators.localModel("LOCAL_MODEL_PATH");
            }
            for (String platform : PLATFORMS) {
                if (platform.equals("local") && !LocalRuntime.isAvailable()) {
                    out.println("local: skipped, the local runtime is not available here ("
                            + LocalRuntime.unavailabilityCause()
                                    .map(Throwable::getMessage)
                                    .orElse("unknown") + ")");
                    continue;
                }
                String config = Emulators.config("config-swap/" + platform + ".yaml");
                try (InferenceClient client =
                        InferenceClients.loader().env(emulators.env()).load(config)) {
                    Receipt receipt = ask(client).receipt();
                    out.println(receipt.summary());
                    receipts.put(platform, receipt);
                }
            }
        }
        return receipts;
    }

    /** The application code: it sees an {@link InferenceClient}, never the platform behind it. */
    static ChatResponse ask(InferenceClient client) {
        return client.chat(ChatRequest.builder()
                .system("Answer in one sentence.")
                .user("Why run the same code on a server, a serverless endpoint and a laptop?")
                .maxTokens(24)
                .options(RequestOptions.builder().tag("feature", "config-swap").build())
                .build());
    }
}
