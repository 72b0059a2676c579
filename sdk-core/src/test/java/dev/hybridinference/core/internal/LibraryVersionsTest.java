package dev.hybridinference.core.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

import dev.hybridinference.core.internal.LibraryVersions.Found;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The version rules, fed with made-up findings (swapping jars inside one JVM is not possible). */
class LibraryVersionsTest {
    private static Found one(String name, String version) {
        return new Found(name, version, List.of("/m2/" + name + "-" + version + ".jar"));
    }

    private static String problem(String core, String databind, String yaml, String okhttp) {
        return LibraryVersions.problem(
                one("jackson-core", core),
                one("jackson-databind", databind),
                one("jackson-dataformat-yaml", yaml),
                one("OkHttp", okhttp));
    }

    @Test
    void theBuildsOwnLibrariesPass() {
        assertThatCode(LibraryVersions::check).doesNotThrowAnyException();
        assertThat(problem("2.23.0", "2.23.0", "2.23.0", "5.5.1")).isNull();
    }

    @Test
    void theOldestSupportedVersionsPass() {
        assertThat(problem("2.15.0", "2.15.0", "2.15.0", "5.0.0")).isNull();
        assertThat(problem("2.15.2", "2.15.2", "2.15.2", "5.0.0-alpha.14")).isNull();
    }

    @Test
    void aNewerJacksonCoreThanItsModulesPasses() {
        assertThat(problem("2.18.2", "2.17.2", "2.16.1", "5.5.1")).isNull();
    }

    @Test
    void anOldJacksonDatabindIsNamedWithItsVersionAndWhatToRun() {
        assertThat(problem("2.23.0", "2.14.3", "2.23.0", "5.5.1"))
                .isEqualTo("hybrid-inference needs jackson-databind 2.15 or newer on the classpath; found 2.14.3"
                        + " (check your dependency management: mvn dependency:tree"
                        + " -Dincludes=com.fasterxml.jackson.core)");
    }

    @Test
    void aJacksonModuleNewerThanJacksonCoreIsRefused() {
        // What declaring jackson-databind 2.15 in an application gives: its jackson-core, our YAML module.
        assertThat(problem("2.15.2", "2.15.2", "2.23.0", "5.5.1"))
                .startsWith("jackson-dataformat-yaml 2.23.0 needs jackson-core 2.23 or newer, but the classpath has"
                        + " jackson-core 2.15.2")
                .contains("com.fasterxml.jackson:jackson-bom")
                .contains("mvn dependency:tree -Dincludes=com.fasterxml.jackson.core,com.fasterxml.jackson.dataformat");
    }

    @Test
    void okHttp4IsRefusedWithItsVersion() {
        assertThat(problem("2.23.0", "2.23.0", "2.23.0", "4.12.0"))
                .startsWith("hybrid-inference needs OkHttp 5.0 or newer (com.squareup.okhttp3:okhttp-jvm) on the"
                        + " classpath; found 4.12.0")
                .contains("mvn dependency:tree -Dincludes=com.squareup.okhttp3");
    }

    @Test
    void twoCopiesOfALibraryAreRefusedNamingBothJars() {
        String p = LibraryVersions.problem(
                one("jackson-core", "2.23.0"),
                one("jackson-databind", "2.23.0"),
                one("jackson-dataformat-yaml", "2.23.0"),
                new Found("OkHttp", "5.5.1", List.of("/m2/okhttp-jvm-5.5.1.jar", "/m2/okhttp-4.12.0.jar")));
        assertThat(p)
                .isEqualTo("OkHttp is on the classpath 2 times (/m2/okhttp-jvm-5.5.1.jar, /m2/okhttp-4.12.0.jar):"
                        + " classes of different copies mix and fail at run time; keep one (check: mvn"
                        + " dependency:tree -Dincludes=com.squareup.okhttp3)");
    }

    @Test
    void missingLibrariesAndUnreadableVersionsAreReportedTogether() {
        String p = LibraryVersions.problem(
                new Found("jackson-core", null, List.of()),
                one("jackson-databind", "2.23.0"),
                new Found("jackson-dataformat-yaml", "0.0.0", List.of("/x.jar")),
                new Found("OkHttp", null, List.of("/okhttp-3.14.9.jar")));
        assertThat(p)
                .startsWith("3 library problems:\n  - ")
                .contains("needs jackson-core 2.15 or newer on the classpath; found none (")
                .contains("needs jackson-dataformat-yaml 2.15 or newer on the classpath; found 0.0.0 (")
                .contains("found one too old to say its version");
    }

    @Test
    void versionsAndLocationsAreParsed() {
        assertThat(LibraryVersions.parse("2.15.2")).containsExactly(2, 15);
        assertThat(LibraryVersions.parse("2.20")).containsExactly(2, 20);
        assertThat(LibraryVersions.parse("5.0.0-alpha.14")).containsExactly(5, 0);
        assertThat(LibraryVersions.parse("2.19.0-SNAPSHOT")).containsExactly(2, 19);
        assertThat(LibraryVersions.parse("unknown")).isNull();
        assertThat(LibraryVersions.parse(null)).isNull();
        assertThat(LibraryVersions.location(
                        "jar:file:/m2/okhttp-4.12.0.jar!/okhttp3/OkHttpClient.class", "okhttp3/OkHttpClient.class"))
                .isEqualTo("/m2/okhttp-4.12.0.jar");
        assertThat(LibraryVersions.location("file:/w/classes/okhttp3/OkHttpClient.class", "okhttp3/OkHttpClient.class"))
                .isEqualTo("/w/classes/");
    }
}
