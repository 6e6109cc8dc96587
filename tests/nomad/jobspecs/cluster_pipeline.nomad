# A parameterized coordinator in the shape autoeval's cluster job definitions take:
# a node-class constraint, required meta that includes a credential, registry auth,
# a nested logging config, and runtime interpolations left for the client.
job "pipeline" {
  datacenters = ["dc1"]
  type        = "batch"

  constraint {
    attribute = "${node.class}"
    value     = "linux"
  }

  parameterized {
    meta_required = ["aoi", "outputs_path", "hand_index_path", "nomad_token"]
    meta_optional = ["benchmark_sources", "fim_type", "registry_token", "tags"]
  }

  group "coordinator-group" {
    reschedule {
      attempts = 0
    }
    restart {
      attempts = 0
    }

    task "coordinator" {
      driver = "docker"

      config {
        image        = "example.org/fim/coordinator:v1"
        force_pull   = false
        network_mode = "host"
        auth {
          username = "deploy-token"
          password = "${NOMAD_META_registry_token}"
        }
        args = ["--aoi", "${NOMAD_META_aoi}", "--outputs_path", "${NOMAD_META_outputs_path}"]
        logging {
          type = "awslogs"
          config {
            awslogs-group  = "/example/nomad"
            awslogs-stream = "${NOMAD_JOB_ID}"
          }
        }
      }

      env {
        NOMAD_TOKEN = "${NOMAD_META_nomad_token}"
        FIM_TYPE    = "extent"
      }

      resources {
        memory = 3000
      }

      logs {
        max_files     = 5
        max_file_size = 20
      }
    }
  }
}
