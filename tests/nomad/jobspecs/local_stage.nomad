# A parameterized stage in the shape of autoeval's local job definitions: an HCL2
# input variable without a default, volumes built from it, a command the double can run,
# and a poststop task.
variable "repo_root" {
  description = "Where the repository is checked out"
  type        = string
}

job "hand_inundator" {
  datacenters = ["dc1"]
  type        = "batch"

  parameterized {
    meta_required = ["catchment_data_path", "forecast_path", "output_path"]
    meta_optional = ["fim_type"]
  }

  group "inundator" {
    reschedule {
      attempts = 0
    }
    restart {
      attempts = 0
      delay    = "15s"
      mode     = "fail"
    }

    task "processor" {
      driver = "docker"
      config {
        image   = "autoeval-jobs:local"
        volumes = ["${var.repo_root}/testdata:/testdata:ro"]
        command = "/bin/sh"
        args    = ["-c", "echo inundated ${NOMAD_META_catchment_data_path} into ${NOMAD_META_output_path}"]
      }
      resources {
        memory = 64
      }
    }

    task "persist-logs" {
      lifecycle {
        hook    = "poststop"
        sidecar = false
      }
      driver = "docker"
      config {
        image   = "alpine:3"
        command = "/bin/true"
      }
      resources {
        memory = 32
      }
    }
  }
}
