/*
 * pc_types.h — forward declarations of the gateway's main objects, so that a
 * header can name a type without including its whole module.
 */
#ifndef PC_TYPES_H
#define PC_TYPES_H

typedef struct pc_worker_s pc_worker_t;
typedef struct pc_server_s pc_server_t;
typedef struct pc_conn_s pc_conn_t;
typedef struct pc_req_s pc_req_t;
typedef struct pc_upconn_s pc_upconn_t;
typedef struct pc_config_s pc_config_t;
typedef struct pc_route_conf_s pc_route_conf_t;

#endif
