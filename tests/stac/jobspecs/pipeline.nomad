# autoeval's `pipeline` job in the shape of its job_defs/local/pipeline.nomad (HCL2 input
# variables, the seed's meta, no reschedule or restart, a coordinator task with its memory
# and a poststop persist-logs task with less), running the stand-in pipeline on the double.
# `hog_mib` makes the coordinator touch that much memory first (0: none), so a test can
# have it killed for memory at the registered size. Its credentials come from the Nomad
# Variable the job may read (a template), never from meta.
variable "python" {
  type = string
}

variable "standins" {
  type = string
}

variable "stac_api_url" {
  type = string
}

variable "s3_endpoint" {
  type = string
}

variable "memory" {
  type    = number
  default = 512
}

variable "hog_mib" {
  type    = number
  default = 0
}

job "pipeline" {
  datacenters = ["dc1"]
  type        = "batch"

  parameterized {
    meta_required = ["aoi", "outputs_path", "hand_index_path"]
    meta_optional = ["benchmark_sources", "fim_type", "stac_datetime_filter", "tags"]
  }

  group "pipeline-coordinator" {
    reschedule {
      attempts = 0
    }
    restart {
      attempts = 0
    }

    task "coordinator" {
      driver = "docker"
      config {
        image   = "autoeval-coordinator:local"
        command = "${var.python}"
        args = [
          "-c",
          "import runpy, sys; hog = bytearray(${var.hog_mib} * 2**20); del hog; sys.argv = ['standins', 'pipeline']; runpy.run_path('${var.standins}', run_name='__main__')",
        ]
      }
      env {
        STAC_API_URL     = "${var.stac_api_url}"
        AWS_ENDPOINT_URL = "${var.s3_endpoint}"
        FIM_TYPE         = "extent"
      }
      template {
        data        = "{{ with nomadVar \"nomad/jobs/pipeline\" }}{{ range $k, $v := . }}{{ $k }}={{ $v }}\n{{ end }}{{ end }}"
        destination = "secrets/sluice.env"
        env         = true
      }
      resources {
        memory = var.memory
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
