package dev.hybridinference.core.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The library check in a real JVM with real old jars on its classpath (copied to {@code target/linkage-jars} by
 * the build): the message an application with a conflicting Jackson or OkHttp gets, and that the oldest
 * supported versions really work.
 */
class LibraryLinkageTest {
    private static final Path JARS = Path.of("target", "linkage-jars");
    private static final List<String> JACKSON = List.of("jackson-core-", "jackson-databind-", "jackson-annotations-");

    private record Outcome(int exit, String output) {}

    /**
     * Runs {@link LinkageProbe} on this JVM's test classpath without the jars whose names start with one of
     * {@code drop}, and with {@code first} ahead of the rest.
     */
    private static Outcome probe(List<String> drop, List<String> first, String... jvmArgs)
            throws IOException, InterruptedException {
        List<String> cp = new ArrayList<>();
        for (String jar : first) {
            Path p = JARS.resolve(jar);
            assertThat(p).as("copied by the build").exists();
            cp.add(p.toAbsolutePath().toString());
        }
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            String name = Path.of(entry).getFileName().toString();
            if (drop.stream().noneMatch(name::startsWith)) {
                cp.add(entry);
            }
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(List.of(jvmArgs));
        cmd.addAll(List.of("-cp", String.join(File.pathSeparator, cp), LinkageProbe.class.getName()));
        Path out = Files.createTempFile("linkage", ".txt");
        try {
            Process p = new ProcessBuilder(cmd)
                    .redirectErrorStream(true)
                    .redirectOutput(out.toFile())
                    .start();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail("the probe JVM did not finish in 60 s: " + Files.readString(out));
            }
            return new Outcome(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
        }
    }

    @Test
    void anOldJacksonDatabindBesideOurYamlModuleIsRefusedByName() throws Exception {
        // What declaring jackson-databind 2.15 in an application gives: that version's jackson-core, and the
        // jackson-dataformat-yaml of the SDK.
        Outcome o = probe(
                JACKSON,
                List.of("jackson-core-2.15.2.jar", "jackson-databind-2.15.2.jar", "jackson-annotations-2.15.2.jar"));
        assertThat(o.exit()).isNotZero();
        assertThat(o.output())
                .contains("java.lang.IllegalStateException: jackson-dataformat-yaml 2.")
                .contains("needs jackson-core 2.")
                .contains("but the classpath has jackson-core 2.15.2");
    }

    @Test
    void aConsistentJackson215Works() throws Exception {
        List<String> drop = new ArrayList<>(JACKSON);
        drop.add("jackson-dataformat-yaml-");
        Outcome o = probe(
                drop,
                List.of(
                        "jackson-core-2.15.2.jar",
                        "jackson-databind-2.15.2.jar",
                        "jackson-annotations-2.15.2.jar",
                        "jackson-dataformat-yaml-2.15.2.jar"));
        assertThat(o.output()).contains("probe ok: linked fine");
        assertThat(o.exit()).isZero();
    }

    @Test
    void withoutTheCheckAMixedJacksonFailsWithALinkageError() throws Exception {
        Outcome o = probe(
                JACKSON,
                List.of("jackson-core-2.15.2.jar", "jackson-databind-2.15.2.jar", "jackson-annotations-2.15.2.jar"),
                "-D" + LibraryVersions.DISABLE_PROPERTY + "=true");
        assertThat(o.exit()).isNotZero();
        assertThat(o.output()).containsAnyOf("NoSuchMethodError", "NoClassDefFoundError", "NoSuchFieldError");
    }

    @Test
    void jackson214IsRefusedByName() throws Exception {
        List<String> drop = new ArrayList<>(JACKSON);
        drop.add("jackson-dataformat-yaml-");
        Outcome o = probe(
                drop,
                List.of(
                        "jackson-core-2.14.3.jar",
                        "jackson-databind-2.14.3.jar",
                        "jackson-annotations-2.14.3.jar",
                        "jackson-dataformat-yaml-2.14.3.jar"));
        assertThat(o.exit()).isNotZero();
        assertThat(o.output())
                .contains("java.lang.ExceptionInInitializerError")
                .contains("java.lang.IllegalStateException: 3 library problems:")
                .contains("hybrid-inference needs jackson-databind 2.15 or newer on the classpath; found 2.14.3"
                        + " (check your dependency management: mvn dependency:tree"
                        + " -Dincludes=com.fasterxml.jackson.core)");
    }

    @Test
    void okHttp4AheadOfOkHttp5IsRefusedByName() throws Exception {
        Outcome o = probe(List.of(), List.of("okhttp-4.12.0.jar"));
        assertThat(o.exit()).isNotZero();
        assertThat(o.output())
                .contains("hybrid-inference needs OkHttp 5.0 or newer (com.squareup.okhttp3:okhttp-jvm) on the"
                        + " classpath; found 4.12.0")
                .contains("OkHttp is on the classpath 2 times (")
                .contains("okhttp-4.12.0.jar");
    }
}
