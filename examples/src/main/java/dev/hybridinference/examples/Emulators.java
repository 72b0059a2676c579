package dev.hybridinference.examples;

import dev.hybridinference.localgpu.DemoModels;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import dev.hybridinference.testkit.azure.AzureEmulator;
import dev.hybridinference.testkit.cloudrun.CloudRunEmulator;
import dev.hybridinference.testkit.cloudrun.GoogleTokenServer;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/**
 * What the examples need to run on a machine with no cloud account and no GPU server, kept out of their way:
 * for each endpoint a configuration reads, it starts the matching {@code testkit} emulator on loopback unless
 * the environment already names a real one, and records the address (and test credentials) in the
 * environment map that the example hands to {@code InferenceClients.loader().env(...)}.
 *
 * <p>An application does none of this: it sets the same variables (or writes the values into its YAML).
 */
final class Emulators implements AutoCloseable {
    private final PrintStream out;
    private final Map<String, String> env;
    private final List<AutoCloseable> started = new ArrayList<>();
    private Path dir;

    Emulators(PrintStream out, Map<String, String> env) {
        this.out = out;
        this.env = new HashMap<>(env);
    }

    /** The environment the example's configuration is loaded with: the given one plus the emulators'. */
    Map<String, String> env() {
        return env;
    }

    /** The text of a configuration under {@code src/main/resources/examples/}. */
    static String config(String name) {
        try (InputStream in = Emulators.class.getResourceAsStream("/examples/" + name)) {
            if (in == null) {
                throw new IllegalStateException("examples/" + name + " is missing from the classpath");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private boolean isSet(String variable) {
        return !env.getOrDefault(variable, "").isBlank();
    }

    /**
     * Runs {@code start}; if it fails, stops what was started before it too, since the caller's
     * try-with-resources has no hold on this object until its chain of starts returns.
     */
    private Emulators orClose(Runnable start) {
        try {
            start.run();
            return this;
        } catch (RuntimeException | Error e) {
            close();
            throw e;
        }
    }

    private <T extends AutoCloseable> T keep(T closeable) {
        started.add(closeable);
        return closeable;
    }

    /** An emulated vLLM (OpenAI-compatible) server whose URL goes to {@code urlVar}, unless it is set. */
    Emulators vllm(String urlVar, UnaryOperator<OpenAiCompatibleServer.Builder> setup) {
        return orClose(() -> {
            if (!isSet(urlVar)) {
                OpenAiCompatibleServer s =
                        keep(setup.apply(OpenAiCompatibleServer.builder()).start());
                env.put(urlVar, s.baseUrl());
                out.println("  [" + urlVar + " not set: emulated vLLM server at " + s.baseUrl() + "]");
            }
        });
    }

    /**
     * An emulated SageMaker endpoint, unless {@code nameVar} names a real one: its name goes to {@code
     * nameVar}, its URL to {@code urlVar} (the configuration's {@code endpointOverride}). Any credentials pass
     * the emulator; the AWS SDK's default chain finds test ones in system properties when it has none.
     */
    Emulators sageMaker(String nameVar, String urlVar, UnaryOperator<SageMakerEmulator.Builder> setup) {
        return orClose(() -> {
            if (!isSet(nameVar)) {
                SageMakerEmulator e =
                        keep(setup.apply(SageMakerEmulator.builder()).start());
                env.put(nameVar, e.endpointName());
                env.put(urlVar, e.endpoint().toString());
                if (System.getProperty("aws.accessKeyId") == null && !isSet("AWS_ACCESS_KEY_ID")) {
                    System.setProperty("aws.accessKeyId", "AKIDEXAMPLE");
                    System.setProperty("aws.secretAccessKey", "emulator-secret-access-key");
                }
                out.println("  [" + nameVar + " not set: emulated SageMaker endpoint at " + e.endpoint() + "]");
            }
        });
    }

    /**
     * An emulated Azure deployment over HTTPS, unless {@code endpointVar} is set: endpoint, key and the PEM of
     * its certificate go to {@code endpointVar}, {@code keyVar} and {@code caVar}.
     */
    Emulators azure(String endpointVar, String keyVar, String caVar, String deployment) {
        return orClose(() -> {
            if (!isSet(endpointVar)) {
                AzureEmulator e = keep(AzureEmulator.builder()
                        .apiKey("emulator-api-key")
                        .deployment(deployment)
                        .start());
                env.put(endpointVar, e.openAiV1Url());
                env.put(keyVar, "emulator-api-key");
                env.put(caVar, e.writeCertificatePem(dir()).toString());
                out.println("  [" + endpointVar + " not set: emulated Azure deployment at " + e.openAiV1Url() + "]");
            }
        });
    }

    /**
     * An emulated private Cloud Run service, unless {@code urlVar} is set, with a token server that issues its
     * ID tokens: the URL goes to {@code urlVar}, a service account key file for the token server to {@code
     * credentialsVar}.
     */
    Emulators cloudRun(String urlVar, String credentialsVar, UnaryOperator<CloudRunEmulator.Builder> setup) {
        return orClose(() -> {
            if (!isSet(urlVar)) {
                GoogleTokenServer tokens = keep(GoogleTokenServer.start(0));
                CloudRunEmulator e = keep(setup.apply(CloudRunEmulator.builder().requireIdToken(tokens))
                        .start());
                Path key = dir().resolve("service-account-" + started.size() + ".json");
                try {
                    Files.writeString(key, tokens.serviceAccountKeyJson("examples@demo.iam.gserviceaccount.com"));
                } catch (IOException ex) {
                    throw new UncheckedIOException(ex);
                }
                env.put(urlVar, e.url());
                env.put(credentialsVar, key.toString());
                out.println("  [" + urlVar + " not set: emulated Cloud Run service at " + e.url() + "]");
            }
        });
    }

    /** The random-weight demo model, written to a temporary folder, unless {@code pathVar} names a GGUF file. */
    Emulators localModel(String pathVar) {
        return orClose(() -> {
            if (!isSet(pathVar)) {
                Path model = DemoModels.writeRandomModel(dir());
                env.put(pathVar, model.toString());
                out.println("  [" + pathVar + " not set: wrote the demo model " + DemoModels.RANDOM_MODEL_NAME
                        + " (random weights: its answers are nonsense) to " + model + "]");
            }
        });
    }

    private Path dir() {
        if (dir == null) {
            try {
                dir = Files.createTempDirectory("hybrid-inference-examples");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return dir;
    }

    /** Stops every emulator, last started first, and deletes the temporary files. */
    @Override
    public void close() {
        for (int i = started.size() - 1; i >= 0; i--) {
            try {
                started.get(i).close();
            } catch (Exception e) {
                // An emulator that fails to stop must not hide the example's own outcome.
            }
        }
        started.clear();
        if (dir != null) {
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            } catch (IOException e) {
                // Temporary files only.
            }
        }
    }
}
