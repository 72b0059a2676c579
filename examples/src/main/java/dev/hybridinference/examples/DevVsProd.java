package dev.hybridinference.examples;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Receipt;
import java.io.PrintStream;
import java.util.Map;

/**
 * Development and production from one configuration ({@code examples/dev-vs-prod.yaml}): the environment
 * variable {@code APP_PROFILE} (dev unless set) picks the default tier, so a developer's calls go to a small
 * model on a shared dev box and production's to an Azure deployment, with no change to code.
 *
 * <pre>{@code
 * APP_PROFILE=prod mvn -B -q -pl examples -am -DskipTests package exec:java \
 *     -Dexec.mainClass=dev.hybridinference.examples.DevVsProd
 * }</pre>
 */
public final class DevVsProd {
    private DevVsProd() {}

    /**
     * Runs the example.
     *
     * @param args ignored
     */
    public static void main(String[] args) {
        run(System.out, System.getenv());
    }

    /** Runs the example with this environment; returns the receipt of its call. */
    static Receipt run(PrintStream out, Map<String, String> environment) {
        try (Emulators emulators = new Emulators(out, environment)
                        .vllm("VLLM_DEV_URL", b -> b.model("qwen2.5-1.5b-instruct"))
                        .azure("AZURE_ENDPOINT", "AZURE_API_KEY", "AZURE_CA_CERTIFICATES", "gpt-4o-mini");
                InferenceClient client =
                        InferenceClients.loader().env(emulators.env()).load(Emulators.config("dev-vs-prod.yaml"))) {
            Receipt r = client.chat(ChatRequest.builder()
                            .user("Draft a one-line release note for the login fix.")
                            .maxTokens(24)
                            .build())
                    .receipt();
            out.println("APP_PROFILE=" + environment.getOrDefault("APP_PROFILE", "(unset: dev)") + " -> "
                    + r.providerId() + " (" + r.deploymentKind() + ", " + r.model() + ")");
            out.println(r.summary());
            return r;
        }
    }
}
